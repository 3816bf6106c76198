//! `hubsync schema`: prints the manifest's JSON Schema on stdout (the content of
//! `schemas/manifest.schema.json`).

use clap::Args;

#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn exec(args: SchemaArgs) -> Result<i32, crate::Error> {
    let SchemaArgs {} = args;
    print!("{}", crate::manifest::json_schema_string());
    Ok(crate::exit_code::SUCCESS)
}
