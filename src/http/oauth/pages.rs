//! The server-rendered pages of the authorization endpoint: sign-in, consent and errors. Every
//! interpolated value is HTML-escaped; pages are never cached or framed.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// Hidden form fields for `pairs`.
pub fn hidden(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a scope lets the client do, in words.
pub fn describe_scope(scope: &str) -> &'static str {
    match scope {
        super::SCOPE_READ => "Read what your Haven account can see (listings, your bookings, messages)",
        super::SCOPE_FULL => {
            "Act as you: book, host, message and change data, with exactly your account's permissions"
        }
        _ => "Unknown permission",
    }
}

/// A complete page with Haven's headers (no caching, no framing, no scripts).
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Haven</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}}\
         h1{{font-size:1.4rem}} label{{display:block;margin:.8rem 0 .2rem}}\
         input[type=email],input[type=password]{{width:100%;padding:.5rem;box-sizing:border-box}}\
         button{{margin:1rem .5rem 0 0;padding:.5rem 1.2rem}} .error{{color:#b00020}}\
         .muted{{color:#666;font-size:.9rem}} li{{margin:.3rem 0}}</style></head>\
         <body>{body}</body></html>",
        title = esc(title)
    );
    let mut resp = (status, Html(html)).into_response();
    super::no_store(&mut resp);
    let h = resp.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// An error page: shown instead of redirecting when the client or redirect URI cannot be trusted.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Cannot sign in",
        &format!(
            "<h1>Cannot sign in</h1><p class=\"error\">{}</p>\
             <p class=\"muted\">Start again from the app that sent you here.</p>",
            esc(message)
        ),
    )
}

/// The sign-in page. `params` are the authorization request's parameters, carried as hidden
/// fields; `error` is shown above the form after a failed attempt.
pub fn login_page(
    client_name: &str,
    params: &[(&str, &str)],
    csrf: &str,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in to Haven</h1>\
         <p><strong>{client}</strong> wants to connect to your Haven account.</p>{error}\
         <form method=\"post\" action=\"/oauth/authorize\">\n{hidden}\n\
         <label for=\"email\">Email</label><input id=\"email\" type=\"email\" name=\"email\" required autofocus autocomplete=\"username\">\
         <label for=\"password\">Password</label><input id=\"password\" type=\"password\" name=\"password\" required autocomplete=\"current-password\">\
         <button type=\"submit\">Sign in</button></form>",
        client = esc(client_name),
        hidden = hidden(
            &[&[("step", "login"), ("csrf", csrf)], params]
                .concat()
        ),
    );
    page(StatusCode::OK, "Sign in", &body)
}

/// The consent page: names the client, where it will be sent back to, and each scope; when the
/// app asks to act fully, the person may grant read-only access instead (the app learns it from
/// the token answer's `scope`, and is challenged for more when it tries to write).
pub fn consent_page(
    client_name: &str,
    email: &str,
    redirect_host: &str,
    scope: &str,
    ticket: &str,
    csrf: &str,
) -> Response {
    let scopes: String = scope
        .split_whitespace()
        .map(|s| {
            format!(
                "<li><code>{}</code>: {}</li>",
                esc(s),
                esc(describe_scope(s))
            )
        })
        .collect();
    let body = format!(
        "<h1>Allow access?</h1>\
         <p><strong>{client}</strong> wants to access Haven as <strong>{email}</strong>.</p>\
         <p>After you answer you will be sent back to <strong>{host}</strong>.</p>\
         <p>It asks to:</p><ul>{scopes}</ul>\
         <p class=\"muted\">The app's name is chosen by the app itself; allow only apps you started \
         connecting yourself. You can revoke access later.</p>\
         <form method=\"post\" action=\"/oauth/authorize\">\n{hidden}\n\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>{read_only}\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        read_only = if super::scope_has_full(scope) {
            "<button type=\"submit\" name=\"decision\" value=\"allow_read\">Allow read-only</button>"
        } else {
            ""
        },
        client = esc(client_name),
        email = esc(email),
        host = esc(redirect_host),
        hidden = hidden(&[("step", "consent"), ("csrf", csrf), ("ticket", ticket)]),
    );
    page(StatusCode::OK, "Allow access", &body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::esc("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
