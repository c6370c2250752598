//! Keeps the crate simulation-ready: builds it with `--cfg madsim` (in its
//! own target directory, since the flag changes every crate) and runs the
//! simulated three-member exchange in `sim_smoke.rs`.
#![cfg(not(madsim))]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_member_code_runs_under_madsim() {
    // <target>/<profile>/deps/<this test> -> <target>/madsim
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("madsim")))
        .unwrap_or_else(|| PathBuf::from("target/madsim"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["test", "-p", "synod", "--test", "sim_smoke", "--"])
        .arg("--nocapture")
        .env("RUSTFLAGS", "--cfg madsim")
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "the simulated exchange failed:\n{stdout}\n{stderr}"
    );
}
