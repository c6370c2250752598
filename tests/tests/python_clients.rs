//! Python clients against a three-member cluster: pydisque, the Disque
//! client on PyPI, over redis-py 7 (which speaks RESP2 by default) and over
//! redis-py 8 (RESP3 by default), and redis-py alone speaking RESP3 to
//! Disque's commands. The scripts are in `tests/clients/` and fail with a
//! `MISMATCH` line.
//!
//! Each redis-py major has its own virtualenv under the target directory
//! (`client-venvs/redis7`, `client-venvs/redis8`), installed with pip from
//! the pinned `tests/clients/requirements-*.txt` on first use and reused
//! while that file is unchanged. This needs `python3` (3.10 or newer, with
//! `venv` and pip) and, for the first run, access to PyPI.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use system_tests::{Cluster, target_dir};

/// The interpreter that creates the virtualenvs.
const PYTHON: &str = "python3";

/// Written into a virtualenv after pip succeeded, holding the requirements
/// it was installed from.
const INSTALLED_MARKER: &str = "synod-installed.txt";

/// One script's time limit. A client that cannot parse a reply typically
/// waits for more bytes until its socket timeout (5 s in the scripts).
const SCRIPT_TIME_LIMIT: Duration = Duration::from_secs(60);

/// The scripts and their requirements.
fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// Runs a setup command; on failure, panics with its output and `hint`.
fn run_setup(command: &mut Command, what: &str, hint: &str) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start it ({e}). {hint}"));
    assert!(
        output.status.success(),
        "{what} failed ({}). {hint}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// The Python of virtualenv `name` (`redis7`, `redis8`), installed from
/// `clients/requirements-<name>.txt` unless it already was, from the same
/// requirements.
fn venv_python(name: &str) -> PathBuf {
    // The tests run on parallel threads; one installs at a time, and the
    // other then finds its virtualenv ready or installs its own.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _installing = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);

    let requirements_path = clients_dir().join(format!("requirements-{name}.txt"));
    let requirements = fs::read_to_string(&requirements_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", requirements_path.display()));
    let venvs = target_dir().join("client-venvs");
    let venv = venvs.join(name);
    let installed = |venv: &Path| {
        venv.join("bin/python").exists()
            && fs::read_to_string(venv.join(INSTALLED_MARKER)).is_ok_and(|r| r == requirements)
    };
    if installed(&venv) {
        return venv.join("bin/python");
    }

    // Installed beside the old one and moved into place whole, so that an
    // interrupted install is never taken for a complete one, and another
    // test process never sees half of one.
    let guard = Staging(venvs.join(format!(".{name}-installing-{}", std::process::id())));
    let staging = &guard.0;
    let _ = fs::remove_dir_all(staging);
    fs::create_dir_all(&venvs).expect("create the client-venvs directory");
    run_setup(
        Command::new(PYTHON).args(["-m", "venv"]).arg(staging),
        &format!("{PYTHON} -m venv {}", staging.display()),
        "The Python client tests need python3 (3.10 or newer) with venv and pip \
         (Debian: apt-get install python3-venv).",
    );
    run_setup(
        Command::new(staging.join("bin/python"))
            .args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args(["--no-input", "--quiet", "--only-binary", ":all:", "-r"])
            .arg(&requirements_path),
        &format!("pip install -r {}", requirements_path.display()),
        "The Python client tests install their pinned clients from PyPI on \
         first use; check the network, or pip's index settings.",
    );
    fs::write(staging.join(INSTALLED_MARKER), &requirements).expect("write the install marker");
    let _ = fs::remove_dir_all(&venv);
    if fs::rename(staging, &venv).is_err() {
        // Another test process moved its own into place first.
        assert!(installed(&venv), "could not install {}", venv.display());
    }
    venv.join("bin/python")
}

/// A virtualenv being installed, removed when dropped unless it was moved
/// into place: a failed install leaves nothing behind.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `script` from `tests/clients/` with `python`, giving it the
/// members' client addresses; panics with its output unless it succeeds.
/// Its output.
fn run_script(python: &Path, script: &str, cluster: &Cluster) -> String {
    let output_path = cluster.dir.path().join(format!("{script}.out"));
    let output = File::create(&output_path).expect("create the script's output file");
    let mut child = Command::new(python)
        // -E: no PYTHONPATH or PYTHONHOME from outside; -B: no __pycache__
        // in the source tree; -u: output up to a hang is kept.
        .args(["-E", "-B", "-u"])
        .arg(clients_dir().join(script))
        .args(cluster.specs.values().map(|spec| spec.client.to_string()))
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("output handle"))
        .stderr(output)
        .spawn()
        .unwrap_or_else(|e| panic!("start {} {script}: {e}", python.display()));
    let deadline = Instant::now() + SCRIPT_TIME_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the script") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = fs::read_to_string(&output_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => output,
        Some(status) => panic!(
            "{script} with {} failed ({status}):\n{output}",
            python.display()
        ),
        None => panic!(
            "{script} with {} did not finish within {SCRIPT_TIME_LIMIT:?}:\n{output}",
            python.display()
        ),
    }
}

/// Both scripts with the clients of virtualenv `venv`, whose redis-py has
/// major version `redis_major`, against a fresh three-member cluster.
fn clients_against_a_cluster(venv: &str, redis_major: u32) {
    let python = venv_python(venv);
    let cluster = Cluster::start(&format!("python-{venv}"), 3);
    cluster.wait_for_leader(Duration::from_secs(20));
    for script in ["pydisque_jobs.py", "redis_py_resp3.py"] {
        let output = run_script(&python, script, &cluster);
        // The virtualenv holds the redis-py it was meant to.
        assert!(
            output.contains(&format!("redis-py {redis_major}.")),
            "{script} did not run with redis-py {redis_major}:\n{output}"
        );
    }
}

#[test]
fn pydisque_and_resp3_with_redis_py_7() {
    clients_against_a_cluster("redis7", 7);
}

#[test]
fn pydisque_and_resp3_with_redis_py_8() {
    clients_against_a_cluster("redis8", 8);
}
