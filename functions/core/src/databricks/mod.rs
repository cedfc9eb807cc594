//! A Databricks workspace REST client made for the worst day: typed models, every pagination
//! style as a stream, PAT and OAuth M2M, a per-family rate limiter, retries that honour
//! `Retry-After`, and a deadline so a Lambda step returns before its own timeout.
//!
//! One module per API family (after tokio-rs/mini-redis): each owns its types, its calls and
//! their wire encoding. API facts: `shared/reference/databricks-api.md`.

pub mod auth;
pub mod client;
pub mod clusters;
pub mod disaster_recovery;
pub mod error;
pub mod jobs;
pub mod limiter;
#[cfg(test)]
mod never_panic;
pub mod permissions;
pub mod pipelines;
pub mod policies;
pub mod pools;
pub mod repos;
pub mod scim;
pub mod secrets;
pub mod sql;
pub mod unity_catalog;
pub mod warehouses;
pub mod workspace;

pub use auth::Credentials;
pub use client::{ClientConfig, StatsSnapshot, WorkspaceClient};
pub use error::{ApiError, ErrorKind};
pub use limiter::{Family, RateLimits};

use futures::{stream::BoxStream, Future, StreamExt, TryStreamExt};

/// One page of a listing and the token of the next one (`None` on the last page).
pub(crate) type Page<T> = (Vec<T>, Option<String>);

/// Turns a page fetcher into a stream of items. The token is treated as absent when empty:
/// the API omits it on the last page, and an empty one must not loop forever either. A token
/// the server already sent is a loop (a broken or hostile endpoint would otherwise be paged
/// until the caller's deadline): the stream ends with an error naming it.
pub(crate) fn paginate<'a, T, F, Fut>(mut fetch: F) -> BoxStream<'a, Result<T, ApiError>>
where
    T: Send + 'a,
    F: FnMut(Option<String>) -> Fut + Send + 'a,
    Fut: Future<Output = Result<Page<T>, ApiError>> + Send + 'a,
{
    enum Cursor {
        Start,
        Next(String),
        Done,
    }
    // The tokens already sent travel with the cursor.
    let start = (Cursor::Start, std::collections::HashSet::<String>::new());
    futures::stream::try_unfold(start, move |(cursor, mut seen)| {
        let request = match cursor {
            Cursor::Done => None,
            Cursor::Start => Some(fetch(None)),
            Cursor::Next(token) => Some(fetch(Some(token))),
        };
        async move {
            let Some(request) = request else {
                return Ok(None);
            };
            let (items, next) = request.await?;
            let cursor = match next.filter(|t| !t.is_empty()) {
                Some(token) if !seen.insert(token.clone()) => {
                    return Err(ApiError::new(
                        ErrorKind::Unexpected,
                        "pagination",
                        format!("the server sent page token {token:?} twice: a loop"),
                    ))
                }
                Some(token) => Cursor::Next(token),
                None => Cursor::Done,
            };
            Ok(Some((
                futures::stream::iter(items.into_iter().map(Ok)),
                (cursor, seen),
            )))
        }
    })
    .try_flatten()
    .boxed()
}

/// What an id or name must have encoded to stay one path segment: a value that came from a
/// workspace is data, never a path.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `s` as one URL path segment.
pub(crate) fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// Serde helper: a string-keyed map that defaults to empty.
pub type Tags = std::collections::BTreeMap<String, String>;

/// Declares a string or integer id newtype that serialises transparently.
macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
pub(crate) use id_newtype;
