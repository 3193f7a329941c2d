//! Windows resources for the till's executable: icon, version information and the application
//! manifest (DPI awareness; administrator for the shipped release build only, so test binaries and
//! debug runs never ask for elevation). Nothing happens for other targets.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=installer/windows");
    println!("cargo:rerun-if-changed=assets/icon.ico");
    println!("cargo:rerun-if-env-changed=WINDRES");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    if env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("gnu") {
        println!(
            "cargo:warning=Windows resources are built with MinGW windres only; this build has no icon or manifest"
        );
        return;
    }
    if let Err(message) = embed_resources() {
        panic!("Windows resources: {message}");
    }
}

fn embed_resources() -> Result<(), String> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let version = env::var("CARGO_PKG_VERSION").map_err(|e| e.to_string())?;
    let shipped = env::var("PROFILE").as_deref() == Ok("release");

    let version4 = version_parts(&version);
    let mut manifest =
        read(&root.join("installer/windows/loyalty-till.exe.manifest"))?.replace("@VERSION4@", &version4.join("."));
    if !shipped {
        manifest = manifest.replace("requireAdministrator", "asInvoker");
    }
    let manifest_path = out.join("loyalty-till.exe.manifest");
    write(&manifest_path, &manifest)?;

    let rc = read(&root.join("installer/windows/loyalty-till.rc.in"))?
        .replace("@ICON@", &rc_path(&root.join("assets/icon.ico")))
        .replace("@MANIFEST@", &rc_path(&manifest_path))
        .replace("@VERSION_COMMAS@", &version4.join(","))
        .replace("@VERSION@", &version)
        .replace("@DESCRIPTION@", "loyalty-till: loyalty programme till");
    let rc_file = out.join("loyalty-till.rc");
    write(&rc_file, &rc)?;

    let windres = env::var("WINDRES").unwrap_or_else(|_| "x86_64-w64-mingw32-windres".to_owned());
    let object = out.join("loyalty-till-resources.o");
    let status = Command::new(&windres)
        .arg("--input")
        .arg(&rc_file)
        .arg("--output-format=coff")
        .arg("--output")
        .arg(&object)
        .status()
        .map_err(|e| format!("cannot run {windres} (install gcc-mingw-w64-x86-64): {e}"))?;
    if !status.success() {
        return Err(format!("{windres} failed on {}", rc_file.display()));
    }
    // Only the till's own executable carries the resources, never the test harnesses.
    println!("cargo:rustc-link-arg-bin=loyalty-till={}", object.display());
    Ok(())
}

/// "0.1.0" -> ["0", "1", "0", "0"]: Windows version resources have four numeric parts.
fn version_parts(version: &str) -> Vec<String> {
    let core = version.split(['-', '+']).next().unwrap_or("0");
    let mut parts: Vec<String> = core
        .split('.')
        .map(|p| p.parse::<u16>().unwrap_or(0).to_string())
        .collect();
    parts.resize(4, "0".to_owned());
    parts.truncate(4);
    parts
}

/// A path as an .rc string literal (forward slashes work for windres and avoid escaping).
fn rc_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "/")
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
