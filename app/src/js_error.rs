//! Every JavaScript failure the browser drivers meet, as one typed error: a browser API
//! that threw or rejected (with its `name`, such as `NotAllowedError`), one this browser
//! lacks, or a value of an unexpected class. Drivers either turn it into words the user
//! reads ([`JsError::media_problem`]) or say it in the console ([`JsError::warn`]); none is
//! dropped silently.
use js_sys::{Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::i18n::Msg;

#[derive(Debug, thiserror::Error)]
pub enum JsError {
    /// A browser API threw or its promise rejected.
    #[error("{name}: {message}")]
    Thrown { name: String, message: String },
    /// This browser (or this page: no window, not a secure context) lacks the API.
    #[error("{0} is not available here")]
    Missing(&'static str),
    /// A value was not of the class the API promised.
    #[error("expected a {0}")]
    NotA(&'static str),
}

pub type JsResult<T> = Result<T, JsError>;

impl From<JsValue> for JsError {
    fn from(value: JsValue) -> Self {
        let field = |key: &str| {
            Reflect::get(&value, &key.into())
                .ok()
                .and_then(|v| v.as_string())
        };
        match (field("name"), field("message")) {
            (Some(name), message) => JsError::Thrown {
                name,
                message: message.unwrap_or_default(),
            },
            (None, _) => JsError::Thrown {
                name: "Error".into(),
                message: value.as_string().unwrap_or_else(|| format!("{value:?}")),
            },
        }
    }
}

impl JsError {
    /// The exception's name (`NotAllowedError`, ...), if it is one.
    pub fn name(&self) -> &str {
        match self {
            JsError::Thrown { name, .. } => name,
            _ => "",
        }
    }

    /// A camera or microphone failure in the user's words.
    pub fn media_problem(&self) -> Msg {
        match (self, self.name()) {
            (_, "NotAllowedError" | "SecurityError") => Msg::DeviceDenied,
            (JsError::Missing(_), _) | (_, "NotFoundError" | "OverconstrainedError") => {
                Msg::NoDevice
            }
            _ => Msg::DeviceError,
        }
    }

    /// Says what failed in the console, for what the user need not hear about.
    pub fn warn(&self, doing: &str) {
        leptos::logging::warn!("{doing}: {self}");
    }
}

/// Awaits a promise, its rejection as a [`JsError`].
pub async fn settle(promise: Promise) -> JsResult<JsValue> {
    JsFuture::from(promise).await.map_err(JsError::from)
}

/// `value` as a `T`, or which class was expected.
pub fn cast<T: JsCast>(value: JsValue, class: &'static str) -> JsResult<T> {
    value.dyn_into::<T>().map_err(|_| JsError::NotA(class))
}

/// Logs a failure that needs no words for the user, and goes on.
pub fn or_warn<T>(result: JsResult<T>, doing: &str) -> Option<T> {
    result.map_err(|e| e.warn(doing)).ok()
}
