//! Delta tables at a replica: which version can a reader actually load there?
//!
//! S3 Cross-Region Replication copies objects one by one and out of order, so a replica's
//! `_delta_log` can name a commit whose data files have not arrived. The snapshot at version N
//! needs the newest usable checkpoint ≤ N (or every commit from 0), every commit JSON after it up
//! to N, and every file live at N that was added after that checkpoint (data files and
//! deletion-vector files). The newest N for which all of that is present is the table's
//! **consistent version**; its commit time bounds the data a failover keeps.
//!
//! Why the log is read directly rather than through `delta_kernel`: the question is "which
//! objects must exist", not "what rows are there". The kernel would pull Arrow, Parquet and
//! `object_store` into the `replication-check` Lambda (tens of MB of build, megabytes of binary)
//! to read a checkpoint this check deliberately does not read. What it needs of the protocol is
//! small and lives in [`log`]: commit file names, the `add`/`remove`/`commitInfo` actions, the
//! `_last_checkpoint` hint, checkpoint part names and the deletion-vector path rule.
//!
//! Cost is bounded by the commits since the last checkpoint, not by the table's size or history
//! (see [`s3::TableReader`]): one GET of `_last_checkpoint`, one listing of `_delta_log/` that
//! starts after that checkpoint, one ranged GET per checkpoint part (Parquet footer magic), one
//! GET per later commit, and one listing page of the table's own files from just before the
//! smallest one those commits add (a HEAD for each file a truncated page does not reach). Files
//! the checkpoint itself
//! references are not checked one by one — that would grow with the table; a checkpoint is
//! written after the files it names, and replication lag shows on the newer commits first.
//! Only when the named checkpoint is missing or unreadable does the reader fall back to listing
//! the whole log (and says so in a finding).

pub mod log;
pub mod s3;
