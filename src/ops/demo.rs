//! `hubsync demo`: the whole tool in one command, with nothing to set up. It starts an embedded
//! local Hub on a free port, writes the example folders and manifest (`examples/demo.yaml`) into
//! a folder the caller provides, then plans, applies and plans again, which must say "No
//! changes". Each step is reported to the caller as a [`DemoStep`]; this module never prints.
//!
//! The demo's Space secret gets its value from [`SECRET_ENV`], which the demo sets in its own
//! environment overlay (see [`super::load_manifest_with_env`]) rather than in the process
//! environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::api::RepoType;
use crate::apply::{self, ApplyEvent, ApplyOptions, ApplyReport};
use crate::hub::{self, HubConfig, Role, RunningHub, User};
use crate::plan::Plan;
use crate::render::TextDiffs;
use crate::util::secret::Secret;

use super::{PlanOptions, load_manifest_with_env, plan_manifest};

/// The demo's manifest, also kept as `examples/demo.yaml`.
pub const MANIFEST: &str = include_str!("../../examples/demo.yaml");
/// The user the demo's token belongs to; the namespace of the demo's repos.
pub const USER: &str = "demo";
/// The demo hub's write token (it only ever exists on a local, temporary hub).
pub const TOKEN: &str = "hf_demo_write_0123456789abcdef";
/// The variable the manifest reads the Space secret from.
pub const SECRET_ENV: &str = "HUBSYNC_DEMO_API_KEY";
/// The value the demo gives [`SECRET_ENV`].
const SECRET_VALUE: &str = "demo-secret-value-not-for-production";
/// Size of the model's weights: over the Hub's 10 MB threshold, so it goes up through LFS.
const WEIGHTS_BYTES: usize = 12 * 1024 * 1024;

/// Where the demo keeps its files.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// An empty folder for the hub's data (`hub/`) and the example workspace (`workspace/`).
    pub root: PathBuf,
}

/// What the demo did so far, in order.
pub enum DemoStep<'a> {
    /// The local hub is listening.
    HubStarted { url: &'a str, data_dir: &'a Path },
    /// The example manifest and folders are written.
    WorkspaceWritten {
        manifest: &'a Path,
        files: usize,
        bytes: u64,
    },
    /// The first plan: everything to create.
    Planned {
        plan: &'a Plan,
        diffs: &'a TextDiffs,
    },
    /// Something apply did.
    Apply(ApplyEvent),
    /// Apply finished.
    Applied(&'a ApplyReport),
    /// The second plan, which should have nothing to do.
    Replanned { plan: &'a Plan },
}

/// A finished demo: the hub still runs until [`Demo::stop`].
pub struct Demo {
    pub hub: RunningHub,
    pub url: String,
    pub manifest: PathBuf,
    /// The repos the manifest declares.
    pub repos: Vec<(RepoType, String)>,
    pub report: ApplyReport,
}

impl Demo {
    /// Stops the hub.
    pub async fn stop(self) -> Result<(), Error> {
        Ok(self.hub.stop().await?)
    }
}

/// Runs the demo: hub, workspace, plan, apply, re-plan. Fails when apply fails or when the
/// second plan still has changes (the hub and the planner disagree: a bug).
pub async fn run(
    opts: &DemoOptions,
    on_step: &(dyn Fn(DemoStep<'_>) + Sync),
) -> Result<Demo, Error> {
    let workspace = opts.root.join("workspace");
    let data_dir = opts.root.join("hub");
    let manifest = workspace.join(crate::manifest::DEFAULT_FILE);
    let (files, bytes) = write_workspace(&workspace).map_err(|source| Error::Io {
        what: format!("write the demo workspace `{}`", workspace.display()),
        source,
    })?;

    let mut config = HubConfig::new(data_dir.clone());
    config.users = vec![User {
        name: USER.to_string(),
        orgs: Vec::new(),
        tokens: vec![(Secret::new(TOKEN.to_string()), Role::Write)],
    }];
    config.admin = true;
    let hub = hub::spawn(config, "127.0.0.1:0").await?;
    let url = hub.url();
    on_step(DemoStep::HubStarted {
        url: &url,
        data_dir: &data_dir,
    });
    on_step(DemoStep::WorkspaceWritten {
        manifest: &manifest,
        files,
        bytes,
    });

    let plan_opts = PlanOptions {
        manifest: manifest.clone(),
        repos: Vec::new(),
        endpoint: Some(url.clone()),
        token: Some(TOKEN.to_string()),
        diffs: true,
    };
    // The process environment, plus the secret's variable.
    let getenv = |k: &str| {
        if k == SECRET_ENV {
            Some(SECRET_VALUE.to_string())
        } else {
            std::env::var(k).ok()
        }
    };
    let load = || load_manifest_with_env(&manifest, &[], &getenv);
    let planned = plan_manifest(load()?, &plan_opts, |_| {}).await?;
    on_step(DemoStep::Planned {
        plan: &planned.plan,
        diffs: &planned.diffs,
    });
    let emit = |e: ApplyEvent| on_step(DemoStep::Apply(e));
    let report = apply::apply(
        &planned.client,
        &planned.plan,
        &planned.secrets,
        &ApplyOptions::default(),
        &emit,
    )
    .await;
    on_step(DemoStep::Applied(&report));
    if let Some(e) = report.repos.iter().find_map(|r| r.error.as_ref()) {
        return Err(Error::Apply(
            format!(
                "the demo's apply failed: {}",
                crate::util::error::one_line(e)
            ),
            e.hints(),
        ));
    }
    if !report.ok() {
        return Err(Error::Apply(
            "the demo's apply could not upload every file".into(),
            Vec::new(),
        ));
    }

    let replanned = plan_manifest(load()?, &plan_opts, |_| {}).await?;
    on_step(DemoStep::Replanned {
        plan: &replanned.plan,
    });
    if replanned.plan.has_changes() {
        return Err(Error::Apply(
            "the plan after apply still has changes; the demo expected none".into(),
            vec!["this is a bug in hubsync; please report it with the output above".into()],
        ));
    }
    let repos = planned
        .manifest
        .repos
        .iter()
        .map(|r| (r.repo_type, r.id.to_string()))
        .collect();
    Ok(Demo {
        hub,
        url,
        manifest,
        repos,
        report,
    })
}

/// Writes the manifest and the folders it maps; returns the number of files and their bytes.
fn write_workspace(dir: &Path) -> std::io::Result<(usize, u64)> {
    let mut files: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    files.insert("hubsync.yaml", MANIFEST.as_bytes().to_vec());

    files.insert(
        "model/README.md",
        b"---\nlicense: apache-2.0\nlibrary_name: transformers\ntags:\n- hubsync-demo\n---\n\
# tiny-model\n\nA tiny model published by `hubsync demo`.\n"
            .to_vec(),
    );
    files.insert(
        "model/config.json",
        br#"{
  "architectures": ["BertModel"],
  "hidden_size": 1024,
  "num_attention_heads": 4,
  "num_hidden_layers": 3,
  "vocab_size": 3072
}
"#
        .to_vec(),
    );
    files.insert(
        "model/tokenizer.json",
        br#"{"version": "1.0", "model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[UNK]": 1, "hello": 2, "world": 3}}}
"#
        .to_vec(),
    );
    files.insert("model/model.safetensors", safetensors(WEIGHTS_BYTES));
    // Excluded by the manifest: never uploaded.
    files.insert("model/scratch.tmp", b"work in progress\n".to_vec());

    files.insert(
        "dataset/README.md",
        b"---\nlicense: cc-by-4.0\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train.csv\n  - split: test\n    path: data/test.csv\n---\n\
# tiny-dataset\n\nA tiny dataset published by `hubsync demo`.\n"
            .to_vec(),
    );
    let mut train = String::from("text,label\n");
    for i in 0..500 {
        train.push_str(&format!("example sentence number {i},{}\n", i % 2));
    }
    files.insert("dataset/data/train.csv", train.into_bytes());
    files.insert(
        "dataset/data/test.csv",
        b"text,label\nhello world,1\ngoodbye world,0\n".to_vec(),
    );

    files.insert(
        "space/README.md",
        b"---\ntitle: Tiny Space\nsdk: gradio\napp_file: app.py\n---\n\
# tiny-space\n\nA Space published by `hubsync demo`.\n"
            .to_vec(),
    );
    files.insert(
        "space/app.py",
        b"import os\n\nimport gradio as gr\n\nMODEL_ID = os.environ.get(\"MODEL_ID\", \"demo/tiny-model\")\n\n\
def greet(name: str) -> str:\n    return f\"Hello {name}, this Space serves {MODEL_ID}.\"\n\n\
gr.Interface(fn=greet, inputs=\"text\", outputs=\"text\").launch()\n"
            .to_vec(),
    );
    files.insert("space/requirements.txt", b"gradio\n".to_vec());

    let mut bytes = 0u64;
    for (rel, data) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, data)?;
        bytes += data.len() as u64;
    }
    Ok((files.len(), bytes))
}

/// A valid safetensors file holding one F32 tensor of `data_bytes` pseudo-random bytes.
fn safetensors(data_bytes: usize) -> Vec<u8> {
    let mut header = format!(
        r#"{{"__metadata__":{{"format":"pt"}},"weight":{{"dtype":"F32","shape":[{}],"data_offsets":[0,{data_bytes}]}}}}"#,
        data_bytes / 4
    );
    // The header is padded with spaces to a multiple of 8 bytes, as the format recommends.
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + data_bytes);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    // xorshift64*: fast, deterministic, and incompressible enough to look like weights.
    let mut s: u64 = 0x2545_f491_4f6c_dd1d;
    while out.len() < 8 + header.len() + data_bytes {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let v = s.wrapping_mul(0x2545_f491_4f6c_dd1d);
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.truncate(8 + header.len() + data_bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_are_a_valid_safetensors_file() {
        let w = safetensors(1024);
        let n = u64::from_le_bytes(w[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header: serde_json::Value = serde_json::from_slice(&w[8..8 + n]).unwrap();
        assert_eq!(header["weight"]["data_offsets"][1], 1024);
        assert_eq!(w.len(), 8 + n + 1024);
    }

    #[test]
    fn the_manifest_is_valid_with_the_demo_secret() {
        let dir = tempfile::tempdir().unwrap();
        write_workspace(dir.path()).unwrap();
        let env = |k: &str| (k == SECRET_ENV).then(|| SECRET_VALUE.to_string());
        let m = crate::manifest::load(&dir.path().join("hubsync.yaml"), &env).unwrap();
        crate::manifest::check_paths(&m).unwrap();
        assert_eq!(m.repos.len(), 3);
        assert!(
            m.repos
                .iter()
                .all(|r| r.id.to_string().starts_with("demo/"))
        );
    }
}
