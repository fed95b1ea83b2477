//! What a media message may carry: a link to an image or document (`mediaUrl`), or a file uploaded
//! with the message (base64, stored in Postgres like avatars), both type-checked; uploaded files
//! also size-checked and sniffed, so a file is what it claims to be. `getMessageAttachment` reads an
//! uploaded file back, for whoever may read its message.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::{load_message, AttachmentInfo};
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Action, Method, Operation, Service};
use crate::types::Name;

/// Canonical, padded, non-empty standard base64, as a JSON Schema pattern.
const BASE64_PATTERN: &str = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/]{4})$";

/// The file endings a `mediaUrl` may link to.
const LINKABLE: &[&str] = &["png", "jpg", "jpeg", "gif", "webp", "pdf", "txt"];

/// A link to an image or a document: an `http(s)` URL whose path ends in one of the linkable
/// types, at most 2000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MediaUrl(String);

impl MediaUrl {
    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MediaUrl {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let text = raw.trim();
        if text.chars().count() > 2000 {
            return Err("must be at most 2000 characters".into());
        }
        if !link_shape(text) {
            return Err(format!(
                "must be an http(s) link such as https://example.com/photo.jpg to an image \
                 (.png, .jpg, .jpeg, .gif, .webp) or a document (.pdf, .txt) (got \"{raw}\")"
            ));
        }
        Ok(MediaUrl(text.to_string()))
    }
}

/// What [`MEDIA_URL_PATTERN`] says, checked by hand (so the schema and the server agree): `http`
/// or `https` (any case), `://`, a host of letters, digits, dots and dashes starting and ending
/// with a letter or digit, an optional port, then a path ending in a linkable type, then an
/// optional query or fragment; no white space anywhere.
fn link_shape(text: &str) -> bool {
    if text.chars().any(char::is_whitespace) {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return false;
    };
    let Some((authority, path)) = rest.split_once('/') else {
        return false;
    };
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let host_ok = edge(host.chars().next())
        && edge(host.chars().last())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let port_ok =
        port.is_none_or(|p| (1..=4).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()));
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let ending_ok = path
        .rsplit_once('.')
        .is_some_and(|(_, ext)| LINKABLE.contains(&ext));
    host_ok && port_ok && ending_ok
}

/// The JSON Schema pattern of a [`MediaUrl`].
const MEDIA_URL_PATTERN: &str = "^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,4})?/[^?#\\s]*\\.([Pp][Nn][Gg]|[Jj][Pp][Ee]?[Gg]|[Gg][Ii][Ff]|[Ww][Ee][Bb][Pp]|[Pp][Dd][Ff]|[Tt][Xx][Tt])([?#]\\S*)?$";

impl JsonSchema for MediaUrl {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MediaUrl".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string", "maxLength": 2000,
            "pattern": MEDIA_URL_PATTERN,
            "description": "An http(s) link to an image (.png, .jpg, .jpeg, .gif, .webp) or a document (.pdf, .txt)."
        })
    }
}

/// The file types a message may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum AttachmentType {
    /// PNG image
    #[serde(rename = "image/png")]
    Png,
    /// JPEG image
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// GIF image
    #[serde(rename = "image/gif")]
    Gif,
    /// WebP image
    #[serde(rename = "image/webp")]
    Webp,
    /// PDF document
    #[serde(rename = "application/pdf")]
    Pdf,
    /// Plain-text document (UTF-8)
    #[serde(rename = "text/plain")]
    Text,
}

impl AttachmentType {
    /// The MIME type.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentType::Png => "image/png",
            AttachmentType::Jpeg => "image/jpeg",
            AttachmentType::Gif => "image/gif",
            AttachmentType::Webp => "image/webp",
            AttachmentType::Pdf => "application/pdf",
            AttachmentType::Text => "text/plain",
        }
    }
    /// Whether `data` is really a file of this type (its signature; text: UTF-8 without NUL).
    pub fn matches(self, data: &[u8]) -> bool {
        match self {
            AttachmentType::Png => data.starts_with(b"\x89PNG\r\n\x1a\n"),
            AttachmentType::Jpeg => data.starts_with(&[0xFF, 0xD8, 0xFF]),
            AttachmentType::Gif => data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a"),
            AttachmentType::Webp => {
                data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP"
            }
            AttachmentType::Pdf => data.starts_with(b"%PDF-"),
            AttachmentType::Text => std::str::from_utf8(data).is_ok_and(|t| !t.contains('\0')),
        }
    }
}

/// A file uploaded with a message.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAttachment {
    /// The original file name.
    pub file_name: Name,
    /// The file's type: image/png, image/jpeg, image/gif, image/webp, application/pdf or text/plain.
    pub mime_type: AttachmentType,
    /// The file, base64-encoded (at most 1 MiB decoded).
    #[schemars(extend("contentEncoding" = "base64", "maxLength" = 1_398_104, "pattern" = BASE64_PATTERN))]
    pub file_data: String,
}

/// Decodes and checks an uploaded file, then stores it for `owner`; returns its id.
pub async fn store(ctx: &Ctx, owner: Uuid, file: &NewAttachment) -> Result<Uuid, ToolError> {
    let data = BASE64
        .decode(file.file_data.trim())
        .map_err(|_| ToolError::field("attachment.fileData", "is not valid base64"))?;
    let max = ctx.services.settings.max_attachment_bytes;
    if data.is_empty() || data.len() > max {
        return Err(ToolError::field(
            "attachment.fileData",
            format!("must decode to 1 to {max} bytes (got {})", data.len()),
        ));
    }
    if !file.mime_type.matches(&data) {
        return Err(ToolError::field(
            "attachment.fileData",
            format!(
                "is not a {} file (its content does not match attachment.mimeType)",
                file.mime_type.as_str()
            ),
        ));
    }
    let mut db = ctx.db().await?;
    Ok(sqlx::query_scalar(
        "INSERT INTO messaging.message_attachments (owner_id, file_name, mime_type, file_size, file_data)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(owner)
    .bind(file.file_name.as_str())
    .bind(file.mime_type.as_str())
    .bind(data.len() as i32)
    .bind(data)
    .fetch_one(&mut *db)
    .await?)
}

/// Input of `getMessageAttachment`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachmentRef {
    /// The message that carries the file.
    pub message_id: Uuid,
}

/// An uploaded file with its content.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentWithData {
    /// The file's metadata.
    #[serde(flatten)]
    pub file: AttachmentInfo,
    /// The message carrying it.
    pub message_id: Uuid,
    /// The content, base64-encoded.
    pub file_data: String,
}

/// The attachment operation.
pub fn operations() -> Vec<Operation> {
    vec![Operation::build("getMessageAttachment", Service::Messaging)
        .title("Download a message's attached file")
        .who("the thread's guest and host while the message is shown; admins")
        .describe(
            "Returns the file uploaded with a media message (its name, type, size and base64 \
             content). Readable by the two participants of the message's thread while the message \
             is neither deleted nor moderated, and by admins; others get not found.",
        )
        .rest(
            Method::Get,
            "/messaging-api/v1/messages/{messageId}/attachment",
        )
        .reads(Action::Get, "messageAttachment")
        .handler(get_attachment)]
}

async fn get_attachment(ctx: Ctx, input: AttachmentRef) -> Result<AttachmentWithData, ToolError> {
    let (message, _, _) = load_message(&ctx, input.message_id, false).await?;
    let file = message
        .attachment
        .ok_or_else(|| ToolError::not_found("attachment"))?;
    let mut db = ctx.db().await?;
    let data: Vec<u8> =
        sqlx::query_scalar("SELECT file_data FROM messaging.message_attachments WHERE id = $1")
            .bind(file.id)
            .fetch_one(&mut *db)
            .await?;
    Ok(AttachmentWithData {
        file,
        message_id: message.id,
        file_data: BASE64.encode(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_urls_must_link_to_images_or_documents() {
        for ok in [
            "https://cdn.example.com/a/photo.JPG",
            "http://example.org/doc.pdf?x=1",
            "https://example.org/notes.txt#top",
        ] {
            assert!(MediaUrl::try_from(ok.to_string()).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://example.org/a.png",
            "HTTP://0.PNG",
            "https://exa mple.org/a.png",
            "https://-x.org/a.png",
            "https://example.org/run.exe",
            "https://example.org/",
            "not a url",
            "javascript:alert(1).png",
        ] {
            assert!(MediaUrl::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn files_must_be_what_they_claim() {
        assert!(AttachmentType::Png.matches(b"\x89PNG\r\n\x1a\nrest"));
        assert!(!AttachmentType::Png.matches(b"GIF89a"));
        assert!(AttachmentType::Pdf.matches(b"%PDF-1.7"));
        assert!(AttachmentType::Text.matches("hello".as_bytes()));
        assert!(!AttachmentType::Text.matches(&[0xff, 0xfe, 0]));
    }
}
