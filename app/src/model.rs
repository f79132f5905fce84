//! Types shared by the server and the browser: what the API answers.
use serde::{Deserialize, Serialize};

/// A user's gender as they chose to state it on their profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    #[default]
    Unspecified,
    Male,
    Female,
}

impl Gender {
    pub const ALL: [Gender; 3] = [Gender::Unspecified, Gender::Male, Gender::Female];

    pub fn as_i16(self) -> i16 {
        match self {
            Gender::Unspecified => 0,
            Gender::Male => 1,
            Gender::Female => 2,
        }
    }

    pub fn from_i16(value: i16) -> Self {
        match value {
            1 => Gender::Male,
            2 => Gender::Female,
            _ => Gender::Unspecified,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Unspecified => "unspecified",
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == value)
    }
}

/// What an account may do: the seed's normal / banned / admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[default]
    Normal,
    Banned,
    Admin,
}

impl Role {
    pub fn as_i16(self) -> i16 {
        match self {
            Role::Normal => 0,
            Role::Banned => 1,
            Role::Admin => 2,
        }
    }

    pub fn from_i16(value: i16) -> Self {
        match value {
            1 => Role::Banned,
            2 => Role::Admin,
            _ => Role::Normal,
        }
    }
}

/// The signed-in user's own profile, as `user/me` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    pub id: String,
    pub username: String,
    pub nickname: String,
    pub gender: Gender,
    pub signature: String,
    pub mobile: String,
    pub avatar: String,
    pub role: Role,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// One signed-in session of the caller, as `user/sessions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Names the session for `user/sessions/revoke`.
    pub id: String,
    /// The session making this request.
    pub current: bool,
    /// Browser and system, as read from the user agent ("Chrome on Linux"); empty if unknown.
    pub device: String,
    pub user_agent: String,
    /// The address it signed in from.
    pub ip: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// When it was last used (to within a few minutes), Unix milliseconds.
    pub last_active_at: i64,
    pub expires_at: i64,
}

/// Field limits, checked by the browser before sending and by the server again.
pub mod limits {
    pub const USERNAME_MIN: usize = 3;
    pub const USERNAME_MAX: usize = 32;
    pub const NICKNAME_MAX: usize = 32;
    pub const PASSWORD_MIN: usize = 8;
    pub const PASSWORD_MAX: usize = 128;
    pub const SIGNATURE_MAX: usize = 100;
    pub const MOBILE_MAX: usize = 20;
}

/// What `POST /api/v1/media` answers: the stored upload, ready to be put in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaView {
    /// The media id for `Content::Image`/`Content::File`.
    pub id: String,
    /// `image` when it is a JPEG, PNG, GIF or WebP that could be decoded, else `file`.
    pub kind: MediaKind,
    /// The type found in the bytes.
    pub mime: String,
    /// The file name given at upload, cleaned.
    pub name: String,
    /// Bytes stored (for an image: after its metadata was removed).
    pub size: u64,
    /// Pixels, upright; 0 for files.
    pub width: u32,
    pub height: u32,
    /// Where the file is downloaded.
    pub url: String,
    /// Where its thumbnail is (images only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumb: Option<String>,
}

/// Whether an upload is shown as a picture or offered as a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    File,
}

/// The URL of media `id` (`thumb`: of its thumbnail).
pub fn media_url(id: &str, thumb: bool) -> String {
    if thumb {
        format!("/api/v1/media/{id}/thumb")
    } else {
        format!("/api/v1/media/{id}")
    }
}
