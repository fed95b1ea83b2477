//! Payments: the provider boundary (`local`, `stripe`), the payment flow on a reservation
//! (start, refresh, callback, provider webhooks), payment tickets (`Sys_reservationPayment`),
//! customers and methods, and the append-only ledger (`PaymentRecord`).

pub mod customers;
pub mod flow;
pub mod local;
pub mod provider;
pub mod records;
pub mod signature;
pub mod stripe;
pub mod tickets;

use crate::registry::Operation;

/// Every payment operation.
pub fn operations() -> Vec<Operation> {
    [
        flow::operations(),
        tickets::operations(),
        customers::operations(),
        records::operations(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
