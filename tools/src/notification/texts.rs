//! The texts of automatic notifications, per event type and language (English and German), with
//! `{placeholder}`s filled from the event's parameters. A recipient whose preferred language has no
//! texts gets English.

use serde_json::{Map, Value};

/// A notification's title and body in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The language used (`en`, `de`).
    pub language: &'static str,
    /// Short title (email subject, push title).
    pub title: String,
    /// The message.
    pub body: String,
}

/// The languages with texts, English first (the fallback).
pub const LANGUAGES: &[&str] = &["en", "de"];

/// (event type, [(language, title, body)]).
type Template = (
    &'static str,
    [(&'static str, &'static str, &'static str); 2],
);

const TEMPLATES: &[Template] = &[
    ("bookingRequested", [
        ("en", "New booking request for {listing}", "{other} asked to book {listing} from {checkIn} to {checkOut}."),
        ("de", "Neue Buchungsanfrage für {listing}", "{other} möchte {listing} vom {checkIn} bis {checkOut} buchen."),
    ]),
    ("bookingApproved", [
        ("en", "Your request for {listing} was approved", "The host approved your stay from {checkIn} to {checkOut}. Pay now to confirm it."),
        ("de", "Deine Anfrage für {listing} wurde angenommen", "Der Gastgeber hat deinen Aufenthalt vom {checkIn} bis {checkOut} angenommen. Bezahle jetzt, um ihn zu bestätigen."),
    ]),
    ("bookingDeclined", [
        ("en", "Your request for {listing} was declined", "The host declined your stay from {checkIn} to {checkOut}. {reason}"),
        ("de", "Deine Anfrage für {listing} wurde abgelehnt", "Der Gastgeber hat deinen Aufenthalt vom {checkIn} bis {checkOut} abgelehnt. {reason}"),
    ]),
    ("bookingCancelled", [
        ("en", "Booking for {listing} cancelled", "The stay at {listing} from {checkIn} to {checkOut} was cancelled. {reason}"),
        ("de", "Buchung für {listing} storniert", "Der Aufenthalt in {listing} vom {checkIn} bis {checkOut} wurde storniert. {reason}"),
    ]),
    ("bookingPaid", [
        ("en", "Booking for {listing} confirmed", "The stay at {listing} from {checkIn} to {checkOut} is paid and confirmed."),
        ("de", "Buchung für {listing} bestätigt", "Der Aufenthalt in {listing} vom {checkIn} bis {checkOut} ist bezahlt und bestätigt."),
    ]),
    ("bookingExpired", [
        ("en", "Booking for {listing} expired", "The hold on {listing} from {checkIn} to {checkOut} expired before payment; the nights were released."),
        ("de", "Buchung für {listing} abgelaufen", "Die Reservierung von {listing} vom {checkIn} bis {checkOut} ist vor der Zahlung abgelaufen; die Nächte sind wieder frei."),
    ]),
    ("paymentFailed", [
        ("en", "Payment for {listing} failed", "Your payment for {listing} was declined: {reason}. Try another payment method."),
        ("de", "Zahlung für {listing} fehlgeschlagen", "Deine Zahlung für {listing} wurde abgelehnt: {reason}. Versuche eine andere Zahlungsart."),
    ]),
    ("paymentRefunded", [
        ("en", "Refund for {listing}", "{amount} {currency} were refunded for your stay at {listing}."),
        ("de", "Erstattung für {listing}", "Für deinen Aufenthalt in {listing} wurden {amount} {currency} erstattet."),
    ]),
    ("newMessage", [
        ("en", "New message from {other}", "{preview}"),
        ("de", "Neue Nachricht von {other}", "{preview}"),
    ]),
    ("reviewPublished", [
        ("en", "A review of you was published", "{other} rated the stay at {listing} {rating} out of 5."),
        ("de", "Eine Bewertung über dich wurde veröffentlicht", "{other} hat den Aufenthalt in {listing} mit {rating} von 5 bewertet."),
    ]),
    ("disputeOpened", [
        ("en", "A dispute was opened about {listing}", "{other} opened a dispute ({issue}) about the stay from {checkIn} to {checkOut}."),
        ("de", "Ein Streitfall zu {listing} wurde eröffnet", "{other} hat einen Streitfall ({issue}) zum Aufenthalt vom {checkIn} bis {checkOut} eröffnet."),
    ]),
    ("disputeResolved", [
        ("en", "The dispute about {listing} was {resolution}", "An admin closed the dispute about the stay from {checkIn} to {checkOut}: {resolution}."),
        ("de", "Der Streitfall zu {listing} wurde entschieden", "Ein Admin hat den Streitfall zum Aufenthalt vom {checkIn} bis {checkOut} abgeschlossen: {resolution}."),
    ]),
    ("checkInReminder", [
        ("en", "Check-in tomorrow at {listing}", "Your stay at {listing} starts tomorrow ({checkIn}). Have a good trip!"),
        ("de", "Morgen Check-in in {listing}", "Dein Aufenthalt in {listing} beginnt morgen ({checkIn}). Gute Reise!"),
    ]),
];

/// The best language with texts for a recipient's preferred language (`de-AT` → `de`).
pub fn language_for(preferred: Option<&str>) -> &'static str {
    let primary = preferred
        .unwrap_or("en")
        .split(['-', '_'])
        .next()
        .unwrap_or("en")
        .to_ascii_lowercase();
    LANGUAGES
        .iter()
        .find(|l| **l == primary)
        .copied()
        .unwrap_or("en")
}

/// The texts of `event` in the recipient's language with `params` filled in; `None` for an
/// event without templates (an admin's announcement carries its own texts).
pub fn render(
    event: &str,
    preferred: Option<&str>,
    params: &Map<String, Value>,
) -> Option<Rendered> {
    let language = language_for(preferred);
    let (_, variants) = TEMPLATES.iter().find(|(e, _)| *e == event)?;
    let (language, title, body) = variants
        .iter()
        .find(|(l, _, _)| *l == language)
        .or_else(|| variants.first())?;
    Some(Rendered {
        language,
        title: fill(title, params),
        body: fill(body, params),
    })
}

/// Replaces each `{name}` with the parameter's text (empty when missing), then tidies spaces.
fn fill(template: &str, params: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let value = match params.get(&after[..end]) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                out.push_str(&value);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes text for HTML.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML part of an email: the title and the body, escaped, in a minimal document.
pub fn email_html(language: &str, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"{language}\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif\"><h1 style=\"font-size:18px\">{t}</h1><p>{b}</p>\
         <p style=\"color:#777;font-size:12px\">Haven</p></body></html>",
        t = escape_html(title),
        b = escape_html(body)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_event_but_announcements_has_texts_in_every_language() {
        use crate::types::Choices;
        for event in super::super::model::EventTypes::VALUES {
            if *event == "announcement" {
                continue;
            }
            for language in LANGUAGES {
                let r = render(event, Some(language), &Map::new()).expect(event);
                assert_eq!(r.language, *language);
            }
        }
    }

    #[test]
    fn texts_follow_the_language_and_fill_placeholders() {
        let params = json!({ "listing": "Loft", "checkIn": "2027-01-02", "checkOut": "2027-01-05", "other": "Ana" });
        let params = params.as_object().unwrap();
        let de = render("bookingRequested", Some("de-AT"), params).unwrap();
        assert_eq!(de.language, "de");
        assert_eq!(de.title, "Neue Buchungsanfrage für Loft");
        let fallback = render("bookingRequested", Some("ja"), params).unwrap();
        assert_eq!(fallback.language, "en");
        assert_eq!(
            fallback.body,
            "Ana asked to book Loft from 2027-01-02 to 2027-01-05."
        );
        assert_eq!(escape_html("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
