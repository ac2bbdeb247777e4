//! Who may open a named object: only files this user owns with mode 0600 — what `create`
//! makes. A file someone else made (or that others may write) is refused at `open`.

use std::os::unix::fs::PermissionsExt;

use greenrt::ipc::Lock;

fn file_of(name: &str) -> String {
    format!("/dev/shm/greenrt.{name}")
}

#[test]
fn smoke_a_named_lock_made_here_opens() {
    let name = format!("trust-{}-ok", std::process::id());
    let made = Lock::create(&name).unwrap();
    let mode = std::fs::metadata(file_of(&name))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(Lock::open(&name).is_ok());
    drop(made);
}

#[test]
fn a_file_others_may_write_is_refused() {
    let name = format!("trust-{}-mode", std::process::id());
    let made = Lock::create(&name).unwrap();
    std::fs::set_permissions(file_of(&name), std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = Lock::open(&name).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("0600"), "{err}");
    drop(made);
}

#[test]
fn a_file_of_another_user_is_refused() {
    // SAFETY (test): geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: making a file of another user needs root (chown)");
        return;
    }
    let name = format!("trust-{}-owner", std::process::id());
    let made = Lock::create(&name).unwrap();
    std::os::unix::fs::chown(file_of(&name), Some(65534), Some(65534)).unwrap();
    let err = Lock::open(&name).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("uid 65534"), "{err}");
    drop(made);
}

#[test]
fn a_child_removes_the_named_objects_it_made_when_it_ends() {
    let name = format!("trust-{}-child", std::process::id());
    let n = name.clone();
    let child = greenrt::process::Process::spawn(move || {
        // Kept past the end of the function (as a value handed to a static, or forgotten).
        std::mem::forget(Lock::create(&n).unwrap());
    })
    .unwrap();
    assert!(child.join().unwrap().success());
    assert!(
        !std::path::Path::new(&file_of(&name)).exists(),
        "the child's named lock outlived it"
    );
}
