//! Uploaded media in the database: the rows, their uses, who may fetch them, what expires.
//!
//! The bytes live in the server's media store (`server/src/media`); this module only knows
//! the `media` and `media_use` tables. Who may fetch a media file: its owner; any member of a
//! conversation it was sent in, while they still are one (a removed friend or a former group
//! member no longer may); anyone signed in for an avatar.
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QuerySelect, Statement,
};
use uuid::Uuid;

use super::AppCore;
use super::auth::CurrentUser;
use super::entity::{media, media_use};
use crate::error::{ApiError, ErrorCode};
use crate::model::{MediaKind, MediaView, media_url};
use crate::protocol::Content;

/// The `media_use` value that makes a media file visible to every signed-in user.
pub const AVATAR_USE: &str = "avatar";

/// The answer for a media id that does not exist or is not the caller's to see.
pub fn not_found() -> ApiError {
    ApiError::not_found("There is no such file.")
}

/// Whether `mime` is shown as a picture: a type browsers render without running anything,
/// and which the server decoded.
pub fn is_image_mime(mime: &str) -> bool {
    matches!(
        mime,
        "image/jpeg" | "image/png" | "image/gif" | "image/webp"
    )
}

/// What the API says about a stored upload.
pub fn view(m: &media::Model) -> MediaView {
    let id = m.id.to_string();
    let image = is_image_mime(&m.mime) && !m.thumb_sha256.is_empty();
    MediaView {
        kind: if image {
            MediaKind::Image
        } else {
            MediaKind::File
        },
        mime: m.mime.clone(),
        name: m.name.clone(),
        size: u64::try_from(m.size).unwrap_or(0),
        width: u32::try_from(m.width).unwrap_or(0),
        height: u32::try_from(m.height).unwrap_or(0),
        url: media_url(&id, false),
        thumb: image.then(|| media_url(&id, true)),
        id,
    }
}

pub async fn insert(db: &impl ConnectionTrait, row: media::Model) -> Result<(), ApiError> {
    let active = media::ActiveModel {
        id: Set(row.id),
        owner_id: Set(row.owner_id),
        sha256: Set(row.sha256),
        size: Set(row.size),
        mime: Set(row.mime),
        name: Set(row.name),
        width: Set(row.width),
        height: Set(row.height),
        thumb_sha256: Set(row.thumb_sha256),
        thumb_size: Set(row.thumb_size),
        thumb_mime: Set(row.thumb_mime),
        created_at: Set(row.created_at),
    };
    media::Entity::insert(active).exec(db).await?;
    Ok(())
}

pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<(), ApiError> {
    media::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// The media row of `id` (a string from a client: anything unparsable is simply absent).
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<media::Model>, ApiError> {
    let Ok(id) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    Ok(media::Entity::find_by_id(id).one(db).await?)
}

/// Bytes the user's uploads take (each upload counts, even when its content is shared).
pub async fn used_bytes(db: &impl ConnectionTrait, owner: Uuid) -> Result<u64, ApiError> {
    let backend = db.get_database_backend();
    let total = match backend {
        DbBackend::Postgres => "CAST(COALESCE(SUM(size + thumb_size), 0) AS BIGINT)",
        DbBackend::MySql => "CAST(COALESCE(SUM(size + thumb_size), 0) AS SIGNED)",
        _ => "COALESCE(SUM(size + thumb_size), 0)",
    };
    let param = if backend == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!("SELECT {total} AS total FROM media WHERE owner_id = {param}"),
            [owner.into()],
        ))
        .await?;
    let total: i64 = match row {
        Some(row) => row.try_get("", "total")?,
        None => 0,
    };
    Ok(u64::try_from(total).unwrap_or(0))
}

/// Records that media `id` was used in `conversation` (a second time changes nothing).
pub async fn add_use(
    db: &impl ConnectionTrait,
    id: Uuid,
    conversation: &str,
    now: i64,
) -> Result<(), ApiError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO media_use (media_id, conversation, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING"
        }
        DbBackend::MySql => {
            "INSERT IGNORE INTO media_use (media_id, conversation, created_at) VALUES (?, ?, ?)"
        }
        _ => {
            "INSERT OR IGNORE INTO media_use (media_id, conversation, created_at) VALUES (?, ?, ?)"
        }
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [id.into(), conversation.into(), now.into()],
    ))
    .await?;
    Ok(())
}

/// Where media `id` was used.
pub async fn uses(db: &impl ConnectionTrait, id: Uuid) -> Result<Vec<String>, ApiError> {
    Ok(media_use::Entity::find()
        .select_only()
        .column(media_use::Column::Conversation)
        .filter(media_use::Column::MediaId.eq(id))
        .into_tuple()
        .all(db)
        .await?)
}

/// Whether `me` may fetch `m`: see the module's rule.
pub async fn may_see(core: &AppCore, me: Uuid, m: &media::Model) -> Result<bool, ApiError> {
    if m.owner_id == me {
        return Ok(true);
    }
    for key in uses(&core.db, m.id).await? {
        if key == AVATAR_USE {
            return Ok(true);
        }
        let mut parts = key.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("d"), Some(a), Some(b)) => {
                let (Ok(a), Ok(b)) = (Uuid::parse_str(a), Uuid::parse_str(b)) else {
                    continue;
                };
                let other = if a == me {
                    b
                } else if b == me {
                    a
                } else {
                    continue;
                };
                if core.permissions.are_friends(&core.db, me, other).await? {
                    return Ok(true);
                }
            }
            (Some("g"), Some(g), None) => {
                let Ok(group) = Uuid::parse_str(g) else {
                    continue;
                };
                if core
                    .permissions
                    .group_members(&core.db, group)
                    .await?
                    .contains(&me)
                {
                    return Ok(true);
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

/// The content `me` may send for a message carrying media: the sender names the media, the
/// server fills in everything else from what it stored. Text and call records pass as they
/// are. Only the owner may send a media file; an image must have been decoded as one.
pub async fn checked_content(
    db: &impl ConnectionTrait,
    me: Uuid,
    content: Content,
) -> Result<(Content, Option<Uuid>), ApiError> {
    let Some(id) = content.media() else {
        return Ok((content, None));
    };
    let Some(m) = find(db, id).await?.filter(|m| m.owner_id == me) else {
        return Err(not_found());
    };
    let v = view(&m);
    let content = match content {
        Content::Image { .. } => {
            let Some(thumb) = v.thumb else {
                return Err(ApiError::invalid(
                    "content",
                    "This file is not an image; send it as a file.",
                ));
            };
            Content::Image {
                media: v.id,
                width: v.width,
                height: v.height,
                thumb,
                name: v.name,
                size: v.size,
            }
        }
        _ => Content::File {
            media: v.id,
            name: v.name,
            size: v.size,
            mime: v.mime,
        },
    };
    Ok((content, Some(m.id)))
}

/// Whether media `id` still exists (a send re-checks after recording its use, so that an
/// upload expiring at that moment cannot be sent half-way).
pub async fn exists(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, ApiError> {
    Ok(media::Entity::find_by_id(id).one(db).await?.is_some())
}

/// Deletes the uploads made before `before` (Unix ms) that were never used, and answers
/// the content hashes no remaining upload refers to (their bytes may go from the store).
/// A row is deleted only while it has no use, in one statement, so a send recording its
/// use at the same moment either keeps it or sees it gone.
pub async fn expire_unused(
    db: &impl ConnectionTrait,
    before: i64,
    limit: u64,
) -> Result<Vec<String>, ApiError> {
    let candidates: Vec<media::Model> = media::Entity::find()
        .filter(media::Column::CreatedAt.lt(before))
        .filter(
            media::Column::Id.not_in_subquery(
                Query::select()
                    .column(media_use::Column::MediaId)
                    .from(media_use::Entity)
                    .to_owned(),
            ),
        )
        .limit(limit)
        .all(db)
        .await?;
    let mut hashes = Vec::new();
    for m in candidates {
        let deleted = media::Entity::delete_many()
            .filter(media::Column::Id.eq(m.id))
            .filter(
                Expr::exists(
                    Query::select()
                        .expr(Expr::val(1))
                        .from(media_use::Entity)
                        .and_where(media_use::Column::MediaId.eq(m.id))
                        .to_owned(),
                )
                .not(),
            )
            .exec(db)
            .await?;
        if deleted.rows_affected == 1 {
            hashes.push(m.sha256);
            if !m.thumb_sha256.is_empty() {
                hashes.push(m.thumb_sha256);
            }
        }
    }
    hashes.sort();
    hashes.dedup();
    let mut unreferenced = Vec::new();
    for hash in hashes {
        if !hash_in_use(db, &hash).await? {
            unreferenced.push(hash);
        }
    }
    Ok(unreferenced)
}

/// Whether any upload's bytes or thumbnail are stored under `hash`.
pub async fn hash_in_use(db: &impl ConnectionTrait, hash: &str) -> Result<bool, ApiError> {
    Ok(media::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(media::Column::Sha256.eq(hash))
                .add(media::Column::ThumbSha256.eq(hash)),
        )
        .one(db)
        .await?
        .is_some())
}

/// The error for an upload over the user's allowance.
pub fn quota_exceeded(quota: u64) -> ApiError {
    ApiError::new(
        ErrorCode::QuotaExceeded,
        format!(
            "Your files would take more than your {} MB of storage. Ask the administrator for more.",
            quota / (1024 * 1024)
        ),
    )
}

/// The address everyone sees for an avatar made of `media_id`, one of `me`'s own uploaded
/// pictures (its square thumbnail), or `""` (initials) for an empty id. Marks the picture as
/// an avatar: any signed-in user may fetch it from then on, and it never expires.
pub async fn avatar_url(
    db: &impl ConnectionTrait,
    me: &CurrentUser,
    media_id: &str,
) -> Result<String, ApiError> {
    if media_id.is_empty() {
        return Ok(String::new());
    }
    let Some(m) = find(db, media_id).await?.filter(|m| m.owner_id == me.id()) else {
        return Err(not_found());
    };
    if !is_image_mime(&m.mime) || m.thumb_sha256.is_empty() {
        return Err(ApiError::invalid("media", "An avatar must be a picture."));
    }
    add_use(db, m.id, AVATAR_USE, super::now_ms()).await?;
    Ok(crate::model::media_url(&m.id.to_string(), true))
}
