//! Who runs the command: the operating-system login of the process owner, looked up from the
//! effective user id (never from `$USER`, `$LOGNAME` or a flag, which the caller can type).

/// The login name of the effective user.
///
/// # Errors
/// A sentence saying why the login cannot be known.
#[cfg(unix)]
pub fn os_login() -> Result<String, String> {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => Ok(user.name),
        Ok(None) => Err(format!("user id {uid} has no entry in the user database, so it has no login name")),
        Err(e) => Err(format!("cannot look up the login of user id {uid}: {e}")),
    }
}

/// The login name of the effective user.
///
/// # Errors
/// Always: only Unix logins are supported.
#[cfg(not(unix))]
pub fn os_login() -> Result<String, String> {
    Err("identities from operating-system logins are supported on Unix only; run a rehearsal instance (`kars instance start --clock virtual`) or `kars serve`".to_owned())
}
