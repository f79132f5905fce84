//! The one error type of the HTTP API and of every server function.
//!
//! Each [`ErrorCode`] is a stable machine code with one HTTP status ([`ErrorCode::status`]);
//! the server's API layer maps status codes from here and nowhere else. `message` is a human
//! sentence that is safe to show; internal detail (SQL errors, I/O) goes to the server log only.
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// A stable, snake_case error code. Clients branch on this, never on `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body is not valid JSON or lacks a field.
    BadRequest,
    /// A field is present but its value is not allowed; `field` names it.
    InvalidField,
    /// The body is larger than the server accepts.
    PayloadTooLarge,
    /// The body's `Content-Type` is not what the endpoint reads.
    UnsupportedMediaType,
    /// No valid session: log in first.
    Unauthorized,
    /// Username or password is wrong (deliberately does not say which).
    InvalidCredentials,
    /// The current password given for a password change is wrong.
    WrongPassword,
    /// The account is banned.
    AccountBanned,
    /// The caller may not do this.
    Forbidden,
    /// The thing asked for does not exist (or is not visible to the caller).
    NotFound,
    /// The username is already taken.
    UsernameTaken,
    /// No (findable) user has this username.
    UserNotFound,
    /// A friend request to oneself.
    CannotAddSelf,
    /// A friend request to a current friend.
    AlreadyFriends,
    /// Only friends may do this (message, call).
    NotFriends,
    /// A join request from a member.
    AlreadyMember,
    /// The caller (or the named user) is not a member of the group.
    NotMember,
    /// Only the group's owner may do this.
    NotOwner,
    /// The owner cannot leave (or be removed from) their own group.
    OwnerCannotLeave,
    /// The group has reached its member limit.
    GroupFull,
    /// A WebSocket frame that is not valid JSON or lacks a field.
    BadFrame,
    /// A WebSocket frame whose `type` the server does not know.
    UnknownType,
    /// A WebSocket frame larger than 64 KiB.
    FrameTooLarge,
    /// A message longer than 4,000 characters.
    MessageTooLong,
    /// Sending faster than the per-user rate allows.
    RateLimited,
    /// The request conflicts with the current state.
    Conflict,
    /// An upload would take the user past their storage allowance.
    QuotaExceeded,
    /// An upload looks like an image (by its bytes) but cannot be read as one: damaged,
    /// truncated, or too large to decode.
    BadImage,
    /// Too many attempts; `retry_after` says when to try again.
    TooManyRequests,
    /// The database or another dependency did not answer.
    Unavailable,
    /// Something broke on the server; details are in its log.
    Internal,
    /// The browser could not reach the server (client side only).
    Network,
    /// A code this client version does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status that carries this code.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest
            | Self::InvalidField
            | Self::CannotAddSelf
            | Self::BadFrame
            | Self::UnknownType
            | Self::MessageTooLong => 400,
            Self::Unauthorized | Self::InvalidCredentials => 401,
            Self::WrongPassword
            | Self::AccountBanned
            | Self::Forbidden
            | Self::NotFriends
            | Self::NotMember
            | Self::NotOwner => 403,
            Self::NotFound | Self::UserNotFound => 404,
            Self::UsernameTaken
            | Self::Conflict
            | Self::AlreadyFriends
            | Self::AlreadyMember
            | Self::OwnerCannotLeave
            | Self::GroupFull => 409,
            Self::BadImage => 422,
            Self::QuotaExceeded => 507,
            Self::PayloadTooLarge | Self::FrameTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::TooManyRequests | Self::RateLimited => 429,
            Self::Unavailable => 503,
            Self::Internal | Self::Network | Self::Unknown => 500,
        }
    }

    /// The snake_case name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidField => "invalid_field",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unauthorized => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::WrongPassword => "wrong_password",
            Self::AccountBanned => "account_banned",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::UsernameTaken => "username_taken",
            Self::UserNotFound => "user_not_found",
            Self::CannotAddSelf => "cannot_add_self",
            Self::AlreadyFriends => "already_friends",
            Self::NotFriends => "not_friends",
            Self::AlreadyMember => "already_member",
            Self::NotMember => "not_member",
            Self::NotOwner => "not_owner",
            Self::OwnerCannotLeave => "owner_cannot_leave",
            Self::GroupFull => "group_full",
            Self::BadFrame => "bad_frame",
            Self::UnknownType => "unknown_type",
            Self::FrameTooLarge => "frame_too_large",
            Self::MessageTooLong => "message_too_long",
            Self::RateLimited => "rate_limited",
            Self::Conflict => "conflict",
            Self::QuotaExceeded => "quota_exceeded",
            Self::BadImage => "bad_image",
            Self::TooManyRequests => "too_many_requests",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Network => "network",
            Self::Unknown => "unknown",
        }
    }
}

/// The JSON error body: `{"code": "...", "message": "...", "field"?: "...", "retry_after"?: n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// For [`ErrorCode::InvalidField`]: which input field is wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For [`ErrorCode::TooManyRequests`]: seconds until the next attempt may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// A field that failed validation.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..Self::new(ErrorCode::InvalidField, message)
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "You are not logged in, or your session has ended.",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn too_many(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                ErrorCode::TooManyRequests,
                "Too many attempts. Please wait and try again.",
            )
        }
    }

    /// An unexpected failure: the detail is logged, the client sees a generic sentence.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            ErrorCode::Internal,
            "Something went wrong on the server. Please try again.",
        )
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(detail) | ServerFnErrorErr::MissingArg(detail) => Self::new(
                ErrorCode::BadRequest,
                format!("The request body is not valid: {detail}"),
            ),
            ServerFnErrorErr::Deserialization(detail) if detail.contains("length limit") => {
                Self::new(ErrorCode::PayloadTooLarge, "The request body is too large.")
            }
            ServerFnErrorErr::Deserialization(detail) if cfg!(feature = "ssr") => Self::new(
                ErrorCode::BadRequest,
                format!("The request body could not be read: {detail}"),
            ),
            ServerFnErrorErr::Request(detail) => Self::new(
                ErrorCode::Network,
                format!("Could not reach the server: {detail}"),
            ),
            other => Self::internal(other),
        }
    }
}
