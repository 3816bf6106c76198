//! JSON and NDJSON bodies of the Hub API, field for field as `huggingface_hub` sends and reads
//! them (camelCase on the wire). Optional fields are skipped when absent so that both sides stay
//! faithful to what the real Hub emits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RepoType;

/// Formats a unix time (seconds + milliseconds) as the Hub does: `2024-02-19T10:57:45.000Z`.
/// `huggingface_hub` rejects any other shape (for example `+00:00`).
pub fn format_date(unix_millis: i64) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(unix_millis as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    dt.format(&fmt).expect("formatting a valid date")
}

/// Parses a Hub date back to unix milliseconds.
pub fn parse_date(s: &str) -> Option<i64> {
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((dt.unix_timestamp_nanos() / 1_000_000) as i64)
}

// ---- errors ----------------------------------------------------------------------------------

/// The machine codes the Hub sends in `X-Error-Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    RepoNotFound,
    RevisionNotFound,
    EntryNotFound,
    GatedRepo,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RepoNotFound => "RepoNotFound",
            ErrorCode::RevisionNotFound => "RevisionNotFound",
            ErrorCode::EntryNotFound => "EntryNotFound",
            ErrorCode::GatedRepo => "GatedRepo",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorCode> {
        [
            ErrorCode::RepoNotFound,
            ErrorCode::RevisionNotFound,
            ErrorCode::EntryNotFound,
            ErrorCode::GatedRepo,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// The JSON error body: `{"error": "…"}`; a 409 on repo creation also carries `url`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
}

// ---- identity --------------------------------------------------------------------------------

/// `GET /api/whoami-v2`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub fullname: String,
    #[serde(default)]
    pub orgs: Vec<OrgInfo>,
    pub auth: AuthInfo,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrgInfo {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub fullname: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthInfo {
    #[serde(rename = "type")]
    pub kind: String,
    pub access_token: Option<AccessTokenInfo>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessTokenInfo {
    pub display_name: String,
    /// `read` or `write`.
    pub role: String,
}

// ---- repos -----------------------------------------------------------------------------------

/// `public`, `private` or `protected` (Spaces only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
    Protected,
}

/// A `{key, value, description?}` pair, used for Space secrets and variables.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
}

/// `POST /api/repos/create`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRepoRequest {
    pub name: String,
    #[serde(default)]
    pub organization: Option<String>,
    /// Omitted for models.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub repo_type: Option<RepoType>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub visibility: Option<Visibility>,
    /// Clients up to 1.7 send `private` instead of `visibility`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub private: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sdk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hardware: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sleep_time_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secrets: Option<Vec<KeyValue>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variables: Option<Vec<KeyValue>>,
}

/// Response of a repo creation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateRepoResponse {
    pub url: String,
    pub name: String,
    pub id: String,
}

/// `DELETE /api/repos/delete`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeleteRepoRequest {
    pub name: String,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub repo_type: Option<RepoType>,
}

/// `gated`: `"auto"`, `"manual"` or `false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Gated {
    Mode(GatedMode),
    Off(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatedMode {
    Auto,
    Manual,
}

/// `PUT /api/{type}s/{id}/settings`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RepoSettingsRequest {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub visibility: Option<Visibility>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub private: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gated: Option<Gated>,
}

/// One `siblings[]` entry of repo info.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sibling {
    pub rfilename: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub blob_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lfs: Option<SiblingLfs>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiblingLfs {
    pub size: u64,
    pub sha256: String,
    pub pointer_size: u64,
}

/// `GET /api/{type}s/{id}[/revision/{rev}]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoInfo {
    #[serde(rename = "_id", default)]
    pub internal_id: String,
    pub id: String,
    #[serde(default)]
    pub author: String,
    pub sha: Option<String>,
    pub private: bool,
    /// `false`, `"auto"` or `"manual"`.
    pub gated: serde_json::Value,
    #[serde(default)]
    pub disabled: bool,
    pub last_modified: Option<String>,
    pub created_at: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub siblings: Vec<Sibling>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sdk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub runtime: Option<SpaceRuntime>,
}

// ---- listing ---------------------------------------------------------------------------------

/// LFS metadata of a tree entry (`oid` is the sha256 here, unlike `Sibling`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeLfs {
    pub oid: String,
    pub size: u64,
    pub pointer_size: u64,
}

/// `lastCommit` of an expanded tree entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LastCommit {
    pub id: String,
    pub title: String,
    pub date: String,
}

/// `file` or `directory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    File,
    Directory,
}

/// One entry of a tree listing or paths-info answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeEntry {
    #[serde(rename = "type")]
    pub kind: EntryType,
    /// Git blob SHA-1 (of the pointer, for LFS files), or git tree SHA-1 for directories.
    pub oid: String,
    pub size: u64,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lfs: Option<TreeLfs>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_commit: Option<LastCommit>,
}

/// `POST /api/{type}s/{id}/paths-info/{rev}` as JSON (Python sends the same as a form).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PathsInfoRequest {
    pub paths: Vec<String>,
    #[serde(default)]
    pub expand: bool,
}

/// One ref in a refs listing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRefInfo {
    pub name: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub target_commit: String,
}

/// `GET /api/{type}s/{id}/refs`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refs {
    pub branches: Vec<GitRefInfo>,
    pub converts: Vec<GitRefInfo>,
    pub tags: Vec<GitRefInfo>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pull_requests: Option<Vec<GitRefInfo>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitAuthor {
    pub user: String,
    #[serde(default)]
    pub avatar: String,
}

/// One commit of `GET /api/{type}s/{id}/commits/{rev}`, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitInfo {
    pub id: String,
    pub title: String,
    pub message: String,
    pub date: String,
    pub authors: Vec<CommitAuthor>,
    #[serde(default)]
    pub parents: Vec<String>,
}

// ---- upload ----------------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreuploadFile {
    pub path: String,
    /// Base64 of the first 512 bytes.
    pub sample: String,
    pub size: u64,
}

/// `POST /api/{type}s/{id}/preupload/{rev}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreuploadRequest {
    pub files: Vec<PreuploadFile>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub git_ignore: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub git_attributes: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadMode {
    Regular,
    Lfs,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreuploadAnswer {
    pub path: String,
    pub upload_mode: UploadMode,
    pub should_ignore: bool,
    /// The remote git oid (regular) or sha256 (LFS) when the path exists.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub oid: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreuploadResponse {
    pub files: Vec<PreuploadAnswer>,
    pub commit_oid: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsObjectSpec {
    pub oid: String,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LfsRef {
    pub name: String,
}

/// `POST {prefix}{id}.git/info/lfs/objects/batch`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LfsBatchRequest {
    pub operation: String,
    #[serde(default)]
    pub transfers: Vec<String>,
    pub objects: Vec<LfsObjectSpec>,
    #[serde(default)]
    pub hash_algo: Option<String>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none", default)]
    pub git_ref: Option<LfsRef>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LfsAction {
    pub href: String,
    /// For multipart: `chunk_size` plus zero-padded part numbers mapped to part URLs.
    #[serde(default)]
    pub header: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LfsActions {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub upload: Option<LfsAction>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verify: Option<LfsAction>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LfsObjectError {
    pub code: u16,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LfsObjectAnswer {
    pub oid: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub authenticated: Option<bool>,
    /// Absent when the Hub already has the object.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub actions: Option<LfsActions>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<LfsObjectError>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LfsBatchResponse {
    pub transfer: String,
    pub objects: Vec<LfsObjectAnswer>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletedPart {
    pub part_number: u32,
    pub etag: String,
}

/// Body of the multipart completion POST.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LfsCompleteRequest {
    pub oid: String,
    pub parts: Vec<CompletedPart>,
}

/// Body of the LFS verify POST.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LfsVerifyRequest {
    pub oid: String,
    pub size: u64,
}

// ---- commit ----------------------------------------------------------------------------------

/// The header line of an NDJSON commit.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitHeader {
    pub summary: String,
    #[serde(default)]
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parent_commit: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitFile {
    pub path: String,
    pub content: String,
    /// `base64` (the only encoding Python sends) or `utf-8`.
    #[serde(default = "base64_encoding")]
    pub encoding: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub old_path: Option<String>,
}

fn base64_encoding() -> String {
    "base64".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitLfsFile {
    pub path: String,
    #[serde(default)]
    pub algo: Option<String>,
    pub oid: String,
    /// Absent on copies; the stored size is used.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub old_path: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitDelete {
    pub path: String,
}

/// One line of an NDJSON commit body: `{"key": "...", "value": {...}}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(
    tag = "key",
    content = "value",
    rename_all = "camelCase",
    deny_unknown_fields
)]
pub enum CommitLine {
    Header(CommitHeader),
    File(CommitFile),
    LfsFile(CommitLfsFile),
    DeletedFile(CommitDelete),
    DeletedFolder(CommitDelete),
}

/// Response of a commit.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitResponse {
    pub success: bool,
    pub commit_oid: String,
    pub commit_url: String,
    #[serde(default)]
    pub hook_output: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pull_request_url: Option<String>,
}

// ---- refs ------------------------------------------------------------------------------------

/// `POST /api/{type}s/{id}/branch/{branch}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBranchRequest {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub starting_point: Option<String>,
}

/// `POST /api/{type}s/{id}/tag/{revision}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateTagRequest {
    pub tag: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
}

// ---- spaces ----------------------------------------------------------------------------------

/// `{key}` body of secret and variable deletion.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRequest {
    pub key: String,
}

/// One entry of `GET …/variables`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariableEntry {
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    pub updated_at: String,
}

/// One entry of `GET …/secrets`: never a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretEntry {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    pub updated_at: String,
}

/// `POST …/hardware`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HardwareRequest {
    pub flavor: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sleep_time_seconds: Option<i64>,
}

/// `POST …/sleeptime`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SleepTimeRequest {
    pub seconds: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceHardware {
    pub current: Option<String>,
    pub requested: Option<String>,
}

/// The Space runtime object; the sleep time is `gcTimeout`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpaceRuntime {
    pub stage: String,
    pub hardware: SpaceHardware,
    #[serde(default)]
    pub storage: Option<String>,
    #[serde(default)]
    pub gc_timeout: Option<i64>,
    #[serde(default)]
    pub dev_mode: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sdk: Option<String>,
}

/// `POST /api/validate-yaml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateYamlRequest {
    pub content: String,
    #[serde(default)]
    pub repo_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_have_the_hub_shape() {
        assert_eq!(format_date(1_708_340_265_000), "2024-02-19T10:57:45.000Z");
        assert_eq!(
            parse_date("2024-02-19T10:57:45.000Z"),
            Some(1_708_340_265_000)
        );
    }

    #[test]
    fn commit_lines_round_trip() {
        let line = r#"{"key":"deletedFolder","value":{"path":"a/"}}"#;
        let parsed: CommitLine = serde_json::from_str(line).unwrap();
        assert!(matches!(parsed, CommitLine::DeletedFolder(ref d) if d.path == "a/"));
        assert_eq!(serde_json::to_string(&parsed).unwrap(), line);
    }
}
