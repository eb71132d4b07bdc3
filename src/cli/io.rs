//! What the command line reads and writes: one capped reader for every file it takes (specs,
//! flowcharts, models, rosters), and a standard output whose write errors are values.
//!
//! Reading never takes more than [`MAX_INPUT_BYTES`] + 1 bytes, so `kars render /dev/zero`
//! stops at once in little memory. Writing goes through [`Output`]: Rust ignores `SIGPIPE`, so
//! `println!` panics when the reader of a pipe has gone (`kars check … | head -1`) or the disk
//! is full (`>/dev/full`); [`Output`] records the first error instead, and [`finish`] turns it
//! into one line on standard error and an exit code.

use std::fmt;
use std::io::{self, BufWriter, Read as _, Write};
use std::path::Path;
use std::process::ExitCode;

/// The largest input kars reads, in bytes: the spec loader's cap ([`kars::spec::MAX_INPUT_BYTES`],
/// 1 MiB), used for every file so that one number bounds what any command holds in memory.
/// Formats with a smaller limit of their own (a model file: 256 KiB) check it after reading.
pub const MAX_INPUT_BYTES: usize = kars::spec::MAX_INPUT_BYTES;

/// The cap as the readers count it.
const CAP: u64 = MAX_INPUT_BYTES as u64;
// The messages say "1 MiB".
const _: () = assert!(MAX_INPUT_BYTES == 1024 * 1024);

/// The name standard input goes by in messages.
pub const STDIN_ORIGIN: &str = "<stdin>";

/// The bytes of one input and the name to show in messages (the path, or `<stdin>` for `-`).
#[derive(Debug)]
pub struct Input {
    /// The path as given, or [`STDIN_ORIGIN`].
    pub origin: String,
    /// Every byte of the input, at most [`MAX_INPUT_BYTES`].
    pub bytes: Vec<u8>,
}

/// The text of one input and the name to show in messages.
#[derive(Debug)]
pub struct TextInput {
    /// The path as given, or [`STDIN_ORIGIN`].
    pub origin: String,
    /// The input, checked to be UTF-8.
    pub text: String,
}

/// How large an oversized input is, as far as kars knows without reading it all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// A regular file's size, from its metadata.
    Exactly(u64),
    /// A pipe, device or growing file: more than this many bytes were offered.
    MoreThan(u64),
}

impl Size {
    /// The sentence for an input of this size, past the cap: `the file is 20971520 bytes, more
    /// than the limit of 1048576 bytes (1 MiB)`, or `the input is more than …` for a stream.
    pub fn too_large(self) -> String {
        match self {
            Self::Exactly(n) => format!("the file is {n} bytes, more than the limit of {CAP} bytes (1 MiB)"),
            Self::MoreThan(_) => format!("the input is more than the limit of {CAP} bytes (1 MiB)"),
        }
    }
}

/// Why an input could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The file cannot be opened or read (missing, a directory, no permission).
    Io {
        /// The path, or [`STDIN_ORIGIN`].
        origin: String,
        /// The operating system's error.
        error: io::Error,
    },
    /// The input is larger than [`MAX_INPUT_BYTES`].
    TooLarge {
        /// The path, or [`STDIN_ORIGIN`].
        origin: String,
        /// Its size.
        size: Size,
    },
    /// The input is not UTF-8 text.
    NotUtf8 {
        /// The path, or [`STDIN_ORIGIN`].
        origin: String,
        /// The offset of the first byte that is not valid UTF-8.
        offset: usize,
        /// That byte.
        byte: u8,
    },
}

impl ReadError {
    /// The exit code: 2 when the input cannot be read, 1 when it was read and is refused.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Io { .. } => super::EXIT_USAGE,
            Self::TooLarge { .. } | Self::NotUtf8 { .. } => super::EXIT_INVALID,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { origin, error } => write!(f, "cannot read `{origin}`: {error}"),
            Self::TooLarge { origin, size } => write!(
                f,
                "`{origin}`: {}\nhelp: kars reads specs, flowcharts, models and rosters of at most 1 MiB; is this the right file?",
                size.too_large()
            ),
            Self::NotUtf8 { origin, offset, byte } => write!(
                f,
                "`{origin}` is not UTF-8 text: byte 0x{byte:02x} at offset {offset} is not valid UTF-8\nhelp: save it as UTF-8"
            ),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Reads `path` (`-`: standard input) whole, refusing more than [`MAX_INPUT_BYTES`].
///
/// A regular file larger than the cap is refused from its metadata without being read; any
/// other input (a pipe, a device) is read to at most the cap plus one byte.
///
/// # Errors
/// [`ReadError::Io`] when it cannot be opened or read, [`ReadError::TooLarge`] past the cap.
pub fn read_bytes(path: &Path) -> Result<Input, ReadError> {
    if path.as_os_str() == "-" {
        let stdin = io::stdin();
        let origin = STDIN_ORIGIN.to_owned();
        let size = stdin_size();
        return read_capped(stdin.lock(), origin, size);
    }
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|error| ReadError::Io { origin: origin.clone(), error })?;
    let size = file.metadata().ok().filter(std::fs::Metadata::is_file).map(|m| m.len());
    read_capped(file, origin, size)
}

/// Reads `path` like [`read_bytes`] and checks that it is UTF-8 text.
///
/// # Errors
/// As [`read_bytes`], and [`ReadError::NotUtf8`] naming the first bad byte.
pub fn read_text(path: &Path) -> Result<TextInput, ReadError> {
    let Input { origin, bytes } = read_bytes(path)?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(TextInput { origin, text }),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let byte = e.as_bytes().get(offset).copied().unwrap_or(0);
            Err(ReadError::NotUtf8 { origin, offset, byte })
        }
    }
}

/// The size of standard input when it is a regular file (`kars check - < big.yaml`).
#[cfg(unix)]
fn stdin_size() -> Option<u64> {
    use std::os::fd::AsFd as _;
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    let metadata = std::fs::File::from(fd).metadata().ok()?;
    metadata.is_file().then_some(metadata.len())
}

#[cfg(not(unix))]
fn stdin_size() -> Option<u64> {
    None
}

/// Reads at most the cap plus one byte; `size` is the input's size when it is a regular file.
fn read_capped(reader: impl io::Read, origin: String, size: Option<u64>) -> Result<Input, ReadError> {
    if let Some(len) = size.filter(|&len| len > CAP) {
        return Err(ReadError::TooLarge { origin, size: Size::Exactly(len) });
    }
    let mut bytes = Vec::with_capacity(size.map_or(8 * 1024, |len| usize::try_from(len).unwrap_or(0) + 1));
    if let Err(error) = reader.take(CAP + 1).read_to_end(&mut bytes) {
        return Err(ReadError::Io { origin, error });
    }
    if bytes.len() > MAX_INPUT_BYTES {
        // A regular file that grew since its size was read counts as a stream.
        return Err(ReadError::TooLarge { origin, size: Size::MoreThan(CAP) });
    }
    Ok(Input { origin, bytes })
}

/// Standard output, locked and buffered, whose first write error is kept instead of panicking.
///
/// It implements [`Write`], so `writeln!(out, …)` works; after the first failure every write
/// fails at once without touching the stream, so a long report stops cheaply. A caller may
/// ignore each write's result (`let _ = writeln!(…)`) and learn of the failure from
/// [`Output::finish`], or stop at the first one with `?`.
pub struct Output {
    out: BufWriter<io::StdoutLock<'static>>,
    failed: Option<io::ErrorKind>,
    error: Option<io::Error>,
}

impl Output {
    /// Locks standard output for the whole command.
    pub fn stdout() -> Self {
        Self { out: BufWriter::with_capacity(64 * 1024, io::stdout().lock()), failed: None, error: None }
    }

    /// Writes `text` as it is.
    pub fn print(&mut self, text: &str) {
        let _ = self.write_all(text.as_bytes());
    }

    /// Whether a write has failed.
    pub fn has_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Flushes, and gives the first write error, if any.
    ///
    /// # Errors
    /// The first [`WriteError`] met by a write or by this flush.
    pub fn finish(mut self) -> Result<(), WriteError> {
        if self.failed.is_none()
            && let Err(e) = self.out.flush()
        {
            let _ = self.record(e);
        }
        match self.error.take() {
            Some(error) => Err(WriteError(error)),
            None => Ok(()),
        }
    }

    /// Keeps the first error and gives the caller an error of the same kind and text.
    fn record(&mut self, error: io::Error) -> io::Error {
        let copy = io::Error::new(error.kind(), error.to_string());
        self.failed = Some(error.kind());
        self.error.get_or_insert(error);
        copy
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(kind, "standard output failed earlier"));
        }
        self.out.write(buf).map_err(|e| self.record(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(kind, "standard output failed earlier"));
        }
        self.out.flush().map_err(|e| self.record(e))
    }
}

/// Standard output could not be written.
#[derive(Debug)]
pub struct WriteError(io::Error);

impl WriteError {
    /// Whether the reader of the pipe has gone (`EPIPE`): `kars … | head -1` stopped reading.
    pub fn is_broken_pipe(&self) -> bool {
        self.0.kind() == io::ErrorKind::BrokenPipe
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write to standard output: {}", self.0)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The exit code of a command that meant to exit with `code` and whose output ended with
/// `written`.
///
/// - Written: `code`.
/// - A closed pipe (`| head -1`, `| true`): `code`, and nothing printed. The reader chose to
///   stop reading; the command did its work, so its own verdict stands, as with `git log | head`.
/// - Any other write error (`>/dev/full`, an IO error): one line on standard error and
///   `unwritten`: [`super::EXIT_USAGE`] for a command that changed nothing, or
///   [`super::EXIT_UNREPORTED`] for one whose change is committed.
pub fn finish(code: u8, written: Result<(), WriteError>, unwritten: u8) -> ExitCode {
    match written {
        Ok(()) => ExitCode::from(code),
        Err(e) if e.is_broken_pipe() => ExitCode::from(code),
        Err(e) => {
            eprint(format_args!("error: {e}\n"));
            ExitCode::from(unwritten)
        }
    }
}

/// Writes to standard error, ignoring failure: when even standard error cannot be written
/// there is nowhere left to say so (`eprint!` would panic).
pub fn eprint(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// `eprintln!` that never panics (see [`eprint`]).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::io::eprint(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use errln;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_past_the_cap_is_refused_after_cap_plus_one_bytes() {
        let mut source = io::repeat(b'#');
        let err = read_capped(&mut source, "s".to_owned(), None).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { size: Size::MoreThan(CAP), .. }), "{err}");
        assert_eq!(
            err.to_string().lines().next(),
            Some("`s`: the input is more than the limit of 1048576 bytes (1 MiB)")
        );
    }

    #[test]
    fn a_large_regular_file_is_refused_with_its_real_size() {
        let err = read_capped(io::empty(), "big.yaml".to_owned(), Some(20 * 1024 * 1024)).unwrap_err();
        assert_eq!(
            err.to_string().lines().next(),
            Some("`big.yaml`: the file is 20971520 bytes, more than the limit of 1048576 bytes (1 MiB)")
        );
    }

    #[test]
    fn input_at_the_cap_is_read_whole() {
        let exact = vec![b'a'; MAX_INPUT_BYTES];
        let input = read_capped(exact.as_slice(), "ok".to_owned(), None).unwrap();
        assert_eq!(input.bytes.len(), MAX_INPUT_BYTES);
    }

    #[test]
    fn the_sentence_names_the_real_size_only_when_known() {
        assert!(Size::Exactly(CAP + 7).too_large().starts_with("the file is 1048583 bytes"));
        assert!(Size::MoreThan(CAP).too_large().starts_with("the input is more than the limit"));
    }
}
