//! `hubsync validate [-f FILE]`: checks the manifest alone (no network, no folders) and prints a
//! one-line summary on stdout.

use std::path::PathBuf;

use clap::Args;

use crate::manifest;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub manifest: super::ManifestArgs,
}

/// Settings for `validate`, resolved from the arguments.
#[derive(Debug)]
pub struct ValidateOptions {
    pub file: PathBuf,
}

impl ValidateOptions {
    pub fn resolve(args: ValidateArgs) -> ValidateOptions {
        let ValidateArgs { manifest } = args;
        ValidateOptions {
            file: manifest.file,
        }
    }
}

pub fn exec(args: ValidateArgs) -> Result<i32, crate::Error> {
    let options = ValidateOptions::resolve(args);
    let m = manifest::load(&options.file, &manifest::process_env)?;
    println!("{}", summary(&options, &m));
    Ok(crate::exit_code::SUCCESS)
}

/// "`hubsync.yaml` is valid: 3 repos, 5 file mappings".
fn summary(options: &ValidateOptions, m: &manifest::Manifest) -> String {
    let repos = m.repos.len();
    let mappings = m.mapping_count();
    format!(
        "`{}` is valid: {repos} repo{}, {mappings} file mapping{}",
        options.file.display(),
        plural(repos),
        plural(mappings)
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
