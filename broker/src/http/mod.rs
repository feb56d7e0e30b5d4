//! The admin HTTP listener (`admin.listener`): `/healthz`, `/metrics` and the
//! jobs API. A deliberately small HTTP/1.1 server over tokio (one request per
//! connection, `Connection: close`): the API is a handful of plain requests
//! from curl and the CLI, not worth a web framework in the broker.
//!
//! - `server`: [`serve`], the accept loop and request parsing.
//! - `routes`: [`routes::handle`], request -> response, no I/O.

pub mod routes;
pub mod server;

pub use server::serve;

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// One response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }

    pub fn json(status: u16, value: &impl serde::Serialize) -> Self {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            body,
        }
    }

    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Response::json(status, &serde_json::json!({ "error": message.into() }))
    }
}
