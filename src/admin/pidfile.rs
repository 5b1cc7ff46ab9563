//! The pid file `serve` writes beside its database (`<database>.pid`), through which
//! `teamgate reload` finds the server to send SIGHUP to. It holds the process id and, on a
//! second line, the absolute path of the config file the server re-reads, so that `reload`
//! can refuse a `--config` that is not the server's. The file is removed when the server stops;
//! a stale file (the server crashed, the pid was reused) is detected before signalling, because
//! SIGHUP's default action would terminate an unrelated process.

use std::path::{Path, PathBuf};

/// Why the running server cannot be signalled.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("cannot write the pid file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no pid file at {0}: is `teamgate serve` running with this config's database?")]
    Missing(PathBuf),
    #[error("the pid file {0} does not hold a process id; delete it and restart the server")]
    Garbled(PathBuf),
    #[error(
        "the pid file {path} names process {pid}, which is not a running teamgate (a stale file?); send SIGHUP to the server yourself or restart it"
    )]
    Stale { path: PathBuf, pid: i32 },
    #[error("cannot signal process {pid}: {source}")]
    Signal {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("signalling the server is only supported on Unix; restart it to apply the config")]
    Unsupported,
}

/// What the pid file is named after: the SQLite file (one server per file), or for PostgreSQL
/// (several replicas on several hosts share the database) the config file of this host.
pub fn anchor(database: &crate::config::Database, config: &Path) -> PathBuf {
    match database.sqlite_path() {
        Some(path) => path.to_owned(),
        None => std::path::absolute(config).unwrap_or_else(|_| config.to_owned()),
    }
}

/// Where the pid file of the server using `database` lives.
pub fn path_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".pid");
    PathBuf::from(name)
}

/// The pid file of this process; removed on drop when it still names this process.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Write this process's id and the absolute path of its `config` file to the pid file of
    /// `database`.
    pub fn create(database: &Path, config: &Path) -> Result<PidFile, PidFileError> {
        let path = path_for(database);
        let pid = std::process::id();
        let config = std::path::absolute(config).unwrap_or_else(|_| config.to_owned());
        std::fs::write(&path, format!("{pid}\n{}\n", config.display())).map_err(|source| {
            PidFileError::Write {
                path: path.clone(),
                source,
            }
        })?;
        Ok(PidFile { path, pid })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Another server may have started on the same database since; leave its file alone.
        if read_pid(&self.path)
            .ok()
            .and_then(|p| u32::try_from(p).ok())
            == Some(self.pid)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn read_pid(path: &Path) -> Result<i32, PidFileError> {
    read(path).map(|(pid, _)| pid)
}

/// The pid and the server's config file (absent in files written by older versions).
fn read(path: &Path) -> Result<(i32, Option<PathBuf>), PidFileError> {
    let text = std::fs::read_to_string(path).map_err(|_| PidFileError::Missing(path.to_owned()))?;
    let mut lines = text.lines();
    let pid = lines
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| PidFileError::Garbled(path.to_owned()))?;
    let config = lines
        .next()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(PathBuf::from);
    Ok((pid, config))
}

/// The config file the server using `database` re-reads on SIGHUP, when its pid file says.
pub fn server_config(database: &Path) -> Result<Option<PathBuf>, PidFileError> {
    read(&path_for(database)).map(|(_, config)| config)
}

/// True when `pid` looks like a teamgate process. Where `/proc` is absent the check cannot be
/// made and the pid file is trusted.
fn is_teamgate(pid: i32) -> bool {
    let proc_dir = Path::new("/proc");
    if !proc_dir.is_dir() {
        return true;
    }
    match std::fs::read_to_string(proc_dir.join(pid.to_string()).join("comm")) {
        // `comm` is the executable's name, cut to 15 bytes.
        Ok(comm) => comm.trim().starts_with("teamgate"),
        Err(_) => false,
    }
}

/// Send SIGHUP to the server using `database`; returns its pid.
pub fn signal_reload(database: &Path) -> Result<i32, PidFileError> {
    let path = path_for(database);
    let pid = read_pid(&path)?;
    if !is_teamgate(pid) {
        return Err(PidFileError::Stale { path, pid });
    }
    send_hangup(pid)?;
    Ok(pid)
}

#[cfg(unix)]
fn send_hangup(pid: i32) -> Result<(), PidFileError> {
    use rustix::process::{Pid, Signal, kill_process};
    let target = Pid::from_raw(pid).ok_or(PidFileError::Garbled(PathBuf::new()))?;
    kill_process(target, Signal::HUP).map_err(|e| PidFileError::Signal {
        pid,
        source: e.into(),
    })
}

#[cfg(not(unix))]
fn send_hangup(_pid: i32) -> Result<(), PidFileError> {
    Err(PidFileError::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_sits_beside_the_database_and_goes_away_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("teamgate.db");
        let file = PidFile::create(&db, Path::new("config/teamgate.toml")).unwrap();
        assert_eq!(file.path(), dir.path().join("teamgate.db.pid"));
        let config = server_config(&db).unwrap().unwrap();
        assert!(
            config.is_absolute() && config.ends_with("config/teamgate.toml"),
            "{config:?}"
        );
        assert_eq!(
            read_pid(file.path()).unwrap(),
            i32::try_from(std::process::id()).unwrap()
        );
        let path = file.path().to_owned();
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn a_pid_file_naming_another_program_is_refused_as_stale() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("teamgate.db");
        // pid 1 is init, never teamgate; sending it SIGHUP would be harmful, so it must be refused.
        std::fs::write(path_for(&db), "1\n").unwrap();
        let init = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
        if !init.is_empty() && !init.starts_with("teamgate") {
            assert!(matches!(
                signal_reload(&db),
                Err(PidFileError::Stale { pid: 1, .. })
            ));
        }
        std::fs::write(path_for(&db), "not a pid\n").unwrap();
        assert!(matches!(signal_reload(&db), Err(PidFileError::Garbled(_))));
        std::fs::remove_file(path_for(&db)).unwrap();
        assert!(matches!(signal_reload(&db), Err(PidFileError::Missing(_))));
    }
}
