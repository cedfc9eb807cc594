//! The ledger: an S3 bucket in the DR region holding every run's record, step outcomes,
//! per-resource fence records, the approval audit and the report — the audit trail and the
//! source of truth for resume. Writes that two writers could race are conditional
//! (`If-None-Match: *` to create, `If-Match: <etag>` to replace).
//!
//! The layout (every key) is in [`keys`], the one module that formats keys.

use aws_sdk_s3::primitives::ByteStream;
use serde::{de::DeserializeOwned, Serialize};

pub mod keys;

use crate::aws::sdk_error_message;

/// A ledger failure.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// S3 refused or could not be reached.
    #[error("ledger s3://{bucket}/{key}: {message}")]
    Store {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What S3 said.
        message: String,
    },
    /// A stored document does not parse.
    #[error("ledger s3://{bucket}/{key}: corrupt document: {message}")]
    Corrupt {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Parse error.
        message: String,
    },
}

/// Result of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Stored; the new ETag.
    Ok(String),
    /// The condition failed: someone else wrote first.
    Conflict,
}

/// A document with the ETag it was read at (for `If-Match` replacement).
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    /// The parsed document.
    pub value: T,
    /// Its ETag.
    pub etag: String,
}

/// The ledger bucket.
#[derive(Debug, Clone)]
pub struct Ledger {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl Ledger {
    /// A ledger in `bucket`.
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
        }
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn store_error(&self, key: &str, message: String) -> LedgerError {
        LedgerError::Store {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            message,
        }
    }

    /// Reads a JSON document; `None` when absent.
    pub async fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Versioned<T>>, LedgerError> {
        let out = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    return Ok(None);
                }
                return Err(self.store_error(key, sdk_error_message(&e)));
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| self.store_error(key, e.to_string()))?
            .into_bytes();
        let value = serde_json::from_slice(&bytes).map_err(|e| LedgerError::Corrupt {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            message: e.to_string(),
        })?;
        Ok(Some(Versioned { value, etag }))
    }

    /// Reads raw bytes; `None` when absent.
    pub async fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.body
                    .collect()
                    .await
                    .map_err(|e| self.store_error(key, e.to_string()))?
                    .into_bytes()
                    .to_vec(),
            )),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.store_error(key, sdk_error_message(&e))),
        }
    }

    async fn put_inner(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        if_none_match: bool,
        if_match: Option<&str>,
    ) -> Result<Written, LedgerError> {
        let mut req = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        if if_none_match {
            req = req.if_none_match("*");
        }
        if let Some(etag) = if_match {
            req = req.if_match(etag);
        }
        let sent = req
            .send()
            .await
            .map(|out| out.e_tag().unwrap_or_default().to_string());
        self.conditional(key, sent)
    }

    /// A conditional request's result: a failed precondition (412) or a concurrent change
    /// (409) is a [`Written::Conflict`], anything else an error naming the key.
    fn conditional<E>(
        &self,
        key: &str,
        sent: Result<
            String,
            aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
        >,
    ) -> Result<Written, LedgerError>
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error,
    {
        match sent {
            Ok(etag) => Ok(Written::Ok(etag)),
            Err(e)
                if matches!(
                    e.raw_response().map(|r| r.status().as_u16()),
                    Some(412) | Some(409)
                ) =>
            {
                Ok(Written::Conflict)
            }
            Err(e) => Err(self.store_error(key, sdk_error_message(&e))),
        }
    }

    /// Writes (overwrites) a JSON document.
    pub async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<String, LedgerError> {
        let body =
            serde_json::to_vec_pretty(value).map_err(|e| self.store_error(key, e.to_string()))?;
        match self
            .put_inner(key, body, "application/json", false, None)
            .await?
        {
            Written::Ok(etag) => Ok(etag),
            Written::Conflict => Err(self.store_error(key, "unexpected conflict".into())),
        }
    }

    /// Writes raw bytes (reports).
    pub async fn put_raw(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), LedgerError> {
        self.put_inner(key, body, content_type, false, None)
            .await
            .map(|_| ())
    }

    /// Creates a document only if the key does not exist (`If-None-Match: *`).
    pub async fn create<T: Serialize>(&self, key: &str, value: &T) -> Result<Written, LedgerError> {
        let body =
            serde_json::to_vec_pretty(value).map_err(|e| self.store_error(key, e.to_string()))?;
        self.put_inner(key, body, "application/json", true, None)
            .await
    }

    /// Replaces a document only if it still has `etag` (`If-Match`).
    pub async fn replace<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        etag: &str,
    ) -> Result<Written, LedgerError> {
        let body =
            serde_json::to_vec_pretty(value).map_err(|e| self.store_error(key, e.to_string()))?;
        self.put_inner(key, body, "application/json", false, Some(etag))
            .await
    }

    /// Deletes a key (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<(), LedgerError> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.store_error(key, sdk_error_message(&e)))?;
        Ok(())
    }

    /// Deletes a key only if it still has `etag` (S3 conditional delete, `If-Match`): the
    /// compare-and-delete that lets only a lock's holder, or whoever proved it stale, remove it.
    pub async fn delete_if_match(&self, key: &str, etag: &str) -> Result<Written, LedgerError> {
        let sent = self
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await
            .map(|_| String::new());
        self.conditional(key, sent)
    }

    /// How many keys are under a prefix, counting at most `limit` (one request): a cheap cap
    /// check for bounded append-only logs.
    pub async fn count_up_to(&self, prefix: &str, limit: usize) -> Result<usize, LedgerError> {
        let page = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(i32::try_from(limit.min(1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| self.store_error(prefix, sdk_error_message(&e)))?;
        Ok(page.contents().len())
    }

    /// The "folders" one level under a prefix (`runs/` → `runs/<id>/`), sorted: a caller that
    /// wants one document per run does not list every step record and handoff chunk of every
    /// run (thousands per run of a 10,000-job workspace).
    pub async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, LedgerError> {
        let mut out = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.store_error(prefix, sdk_error_message(&e)))?;
            out.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
        }
        out.sort();
        Ok(out)
    }

    /// Keys under a prefix, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, LedgerError> {
        self.list_after(prefix, None).await
    }

    /// Keys under a prefix that sort after `start_after`, sorted: a reader of an append-only
    /// series pays for what is new, not for the whole series.
    pub async fn list_after(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<String>, LedgerError> {
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_string))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.store_error(prefix, sdk_error_message(&e)))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        keys.sort();
        Ok(keys)
    }
}
