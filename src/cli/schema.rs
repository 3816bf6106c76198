//! `hubsync schema`: prints a JSON Schema on stdout — the manifest's by default (the content of
//! `schemas/manifest.schema.json`), the JSON plan's with `--plan` (`schemas/plan.schema.json`).

use clap::Args;

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the schema of `plan --format json` (and saved plans) instead of the manifest's.
    #[arg(long)]
    pub plan: bool,
}

pub fn exec(args: SchemaArgs) -> Result<i32, crate::Error> {
    let SchemaArgs { plan } = args;
    if plan {
        print!("{}", crate::plan::json_schema_string());
    } else {
        print!("{}", crate::manifest::json_schema_string());
    }
    Ok(crate::exit_code::SUCCESS)
}
