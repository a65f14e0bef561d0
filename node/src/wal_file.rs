//! The node's data directory on disk: an exclusive lock, the name of the node it belongs
//! to, the static identity key and the append-only WAL file with real fsyncs.
//!
//! This module performs the protocol's [`DiskRequest`](ferry_protocol::DiskRequest)s on a
//! real file. It does not decide when to append or sync (the protocol node does) and never
//! interprets the WAL's bytes (`ferry_protocol::wal` does).
//!
//! Durability rules it keeps:
//! - a new WAL file, identity key or node name file is followed by an fsync of the
//!   directory holding it, so the name survives a crash along with the data; the key and the
//!   node name are written to a temporary file, synced and renamed, so a crash never leaves
//!   half of one;
//! - a `Sync` is performed with `sync_data` only after every earlier append reached the
//!   file, and completes (reported to the runtime) only after the fsync returned;
//! - a `Truncate` (a torn tail cut at start) is synced before anything is appended.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Sender, SyncSender};

use ferry_protocol::session::{Identity, KEY_BYTES, NAME_BYTES_MAX};
use rand_core::RngCore;

use crate::error::NodeError;
use crate::input::Input;

/// The WAL's file name inside the data directory.
pub const WAL_FILE_NAME: &str = "ferry.wal";
/// The identity key's file name: the secret then the public key, raw.
pub const IDENTITY_FILE_NAME: &str = "identity.key";
/// The node name file's name: the `--id` of the node the directory belongs to, then a
/// newline. Written at the first start; a node with another name is refused the directory.
pub const NODE_NAME_FILE_NAME: &str = "node.name";
/// The trust-on-first-use file: one line per peer met, `NAME HEX-STATIC-KEY`, like SSH's
/// `known_hosts`. A peer presenting a known name with another key is refused.
pub(crate) const KNOWN_PEERS_FILE_NAME: &str = "known_peers";
/// Peers remembered at most; a node meeting more refuses to remember them (and says so).
pub(crate) const KNOWN_PEERS_MAX: usize = 4096;
/// Bytes of a known peers file read at most.
const KNOWN_PEERS_FILE_BYTES_MAX: u64 = (KNOWN_PEERS_MAX * (NAME_BYTES_MAX + 2 * KEY_BYTES + 2)) as u64;

/// Bytes of a node name file read at most: the longest name, its newline, and one more byte
/// to tell a longer file apart.
const NODE_NAME_FILE_BYTES_MAX: u64 = NAME_BYTES_MAX as u64 + 2;
/// The lock file's name: held exclusively while a node runs on the directory.
pub(crate) const LOCK_FILE_NAME: &str = "ferry.lock";
/// Bytes of an identity key file.
const IDENTITY_FILE_BYTES: usize = 2 * KEY_BYTES;
/// Appended bytes buffered before they are written out even without a sync request.
pub(crate) const APPEND_BUFFER_BYTES_MAX: usize = 1 << 20;

/// An opened, locked data directory.
#[derive(Debug)]
pub(crate) struct DataDirectory {
    path: PathBuf,
    /// Held open for the node's life: closing it releases the lock.
    _lock: File,
}

impl DataDirectory {
    /// Creates `path` if needed, checks it is writable and locks it.
    ///
    /// # Errors
    /// [`NodeError::DataDirectory`] when it cannot be created, opened or locked;
    /// [`NodeError::DataDirectoryLocked`] when another node holds it.
    pub(crate) fn open(path: &Path) -> Result<Self, NodeError> {
        let error = |source| NodeError::DataDirectory { path: path.to_owned(), source };
        let existed = path.is_dir();
        if !existed && path.exists() {
            return Err(error(io::Error::new(io::ErrorKind::NotADirectory, "not a directory")));
        }
        fs::create_dir_all(path).map_err(error)?;
        if !existed && let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            sync_directory(parent).map_err(error)?;
        }
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path.join(LOCK_FILE_NAME))
            .map_err(error)?;
        if !lock_exclusive(&lock).map_err(error)? {
            return Err(NodeError::DataDirectoryLocked { path: path.to_owned() });
        }
        Ok(Self { path: path.to_owned(), _lock: lock })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that the directory belongs to the node named `name`, recording the name at the
    /// first start. Call it before anything else reads or writes the directory's data, so a
    /// refused node changes nothing in it.
    ///
    /// # Errors
    /// [`NodeError::WrongNode`] when the directory belongs to another node;
    /// [`NodeError::NodeName`] when the node name file is damaged;
    /// [`NodeError::DataDirectory`] when it cannot be read or written.
    pub(crate) fn claim_name(&self, name: &str) -> Result<NameClaim, NodeError> {
        let path = self.path.join(NODE_NAME_FILE_NAME);
        let error = |source| NodeError::DataDirectory { path: self.path.clone(), source };
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(file) => {
                file.take(NODE_NAME_FILE_BYTES_MAX).read_to_end(&mut bytes).map_err(error)?;
            }
            Err(source) if source.kind() == io::ErrorKind::NotFound => {
                // Writes of some node and no name to say whose: opening them as this node
                // would replicate another node's writes under this one's name. The user says.
                let wal = self.path.join(WAL_FILE_NAME);
                let wal_bytes = match fs::metadata(&wal) {
                    Ok(metadata) => metadata.len(),
                    Err(source) if source.kind() == io::ErrorKind::NotFound => 0,
                    Err(source) => return Err(error(source)),
                };
                if wal_bytes > 0 {
                    return Err(NodeError::UnnamedData {
                        path: self.path.clone(),
                        wal_bytes,
                        given: name.to_owned(),
                    });
                }
                let adopted = wal.exists();
                self.write_atomically(NODE_NAME_FILE_NAME, format!("{name}\n").as_bytes()).map_err(error)?;
                return Ok(NameClaim::Recorded { adopted });
            }
            Err(source) => return Err(error(source)),
        }
        let recorded = parse_node_name(&bytes).map_err(|reason| NodeError::NodeName { path, reason })?;
        if recorded == name {
            Ok(NameClaim::Matched)
        } else {
            Err(NodeError::WrongNode { path: self.path.clone(), recorded, given: name.to_owned() })
        }
    }

    /// Writes `bytes` as the file `file_name` in the directory, readable only by its owner:
    /// a temporary file, synced, renamed over the name, and the directory synced, so a
    /// crash leaves either the old file or the whole new one.
    fn write_atomically(&self, file_name: &str, bytes: &[u8]) -> io::Result<()> {
        let temporary = self.path.join(format!("{file_name}.tmp"));
        let mut file = private_file(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, self.path.join(file_name))?;
        sync_directory(&self.path)
    }

    /// The stored identity, or a new one from `rng` written with mode 0600.
    ///
    /// # Errors
    /// [`NodeError::Identity`] when the key file is damaged; [`NodeError::DataDirectory`]
    /// when it cannot be read or written.
    pub(crate) fn identity(&self, rng: &mut dyn RngCore) -> Result<Identity, NodeError> {
        let path = self.path.join(IDENTITY_FILE_NAME);
        let error = |source| NodeError::DataDirectory { path: self.path.clone(), source };
        match fs::read(&path) {
            Ok(bytes) => {
                parse_identity(&bytes).map_err(|reason| NodeError::Identity { path: path.clone(), reason })
            }
            Err(source) if source.kind() == io::ErrorKind::NotFound => {
                let identity = Identity::generate(rng);
                let mut bytes = Vec::with_capacity(IDENTITY_FILE_BYTES);
                bytes.extend_from_slice(&identity.seed);
                bytes.extend_from_slice(&identity.public);
                self.write_atomically(IDENTITY_FILE_NAME, &bytes).map_err(error)?;
                Ok(identity)
            }
            Err(source) => Err(error(source)),
        }
    }

    /// The peers this node has met, by name ([`KNOWN_PEERS_FILE_NAME`]); empty at first.
    ///
    /// # Errors
    /// [`NodeError::KnownPeers`] when a line is damaged; [`NodeError::DataDirectory`] when
    /// the file cannot be read.
    pub(crate) fn known_peers(&self) -> Result<BTreeMap<String, [u8; KEY_BYTES]>, NodeError> {
        let path = self.path.join(KNOWN_PEERS_FILE_NAME);
        if !path.exists() {
            return Ok(BTreeMap::new());
        }
        read_peers_file(&path)
    }

    /// Writes `peers` as the known peers file, atomically.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub(crate) fn save_known_peers(&self, peers: &BTreeMap<String, [u8; KEY_BYTES]>) -> io::Result<()> {
        let mut text = String::new();
        for (name, key) in peers {
            text.push_str(name);
            text.push(' ');
            for byte in key {
                text.push_str(&format!("{byte:02x}"));
            }
            text.push('\n');
        }
        self.write_atomically(KNOWN_PEERS_FILE_NAME, text.as_bytes())
    }

    /// Opens (creating if needed) the WAL and reads all of it.
    ///
    /// # Errors
    /// [`NodeError::WalRead`] when it cannot be opened or read.
    pub(crate) fn open_wal(&self) -> Result<(WalFile, Vec<u8>), NodeError> {
        let path = self.path.join(WAL_FILE_NAME);
        let error = |source| NodeError::WalRead { path: path.clone(), source };
        let existed = path.is_file();
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(error)?;
        if !existed {
            sync_directory(&self.path).map_err(error)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(error)?;
        // A rewrite that crashed before its rename leaves its temporary file: never read.
        let _ = fs::remove_file(temporary_path(&path));
        Ok((WalFile { file: Arc::new(file), path, buffered: Vec::new() }, bytes))
    }
}

/// Reads a peers file (`NAME HEX-KEY` lines, blank lines ignored): a data directory's
/// known peers, or the `--trust` list.
///
/// # Errors
/// [`NodeError::KnownPeers`] when a line is damaged or the file is too large;
/// [`NodeError::PeersFile`] when it cannot be read.
pub(crate) fn read_peers_file(path: &Path) -> Result<BTreeMap<String, [u8; KEY_BYTES]>, NodeError> {
    let mut bytes = Vec::new();
    let file = File::open(path).map_err(|source| NodeError::PeersFile { path: path.to_owned(), source })?;
    file.take(KNOWN_PEERS_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| NodeError::PeersFile { path: path.to_owned(), source })?;
    let damaged = |line: usize, reason: &str| NodeError::KnownPeers {
        path: path.to_owned(),
        line,
        reason: reason.to_owned(),
    };
    if bytes.len() as u64 > KNOWN_PEERS_FILE_BYTES_MAX {
        return Err(damaged(1, &format!("more than {KNOWN_PEERS_MAX} peers")));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| damaged(1, "not UTF-8"))?;
    let mut peers = BTreeMap::new();
    for (index, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let (name, key) =
            line.trim().rsplit_once(' ').ok_or_else(|| damaged(index + 1, "expected NAME HEX-KEY"))?;
        let key = decode_key(key).ok_or_else(|| damaged(index + 1, "the key is not 64 hex digits"))?;
        if name.is_empty()
            || name.len() > NAME_BYTES_MAX
            || name.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(damaged(
                index + 1,
                "the name is empty, too long or has spaces or control characters",
            ));
        }
        peers.insert(name.to_owned(), key);
    }
    Ok(peers)
}

/// 64 hex digits as a key.
fn decode_key(text: &str) -> Option<[u8; KEY_BYTES]> {
    if text.len() != 2 * KEY_BYTES || !text.is_ascii() {
        return None;
    }
    let mut key = [0; KEY_BYTES];
    for (index, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).ok()?;
    }
    Some(key)
}

/// What [`DataDirectory::claim_name`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameClaim {
    /// The directory already belonged to this node.
    Matched,
    /// The name was recorded now; `adopted` when the directory already held a WAL.
    Recorded { adopted: bool },
}

/// Parses a node name file: a name of at most [`NAME_BYTES_MAX`] bytes of UTF-8, then a
/// newline.
fn parse_node_name(bytes: &[u8]) -> Result<String, String> {
    let Some(name) = bytes.strip_suffix(b"\n") else {
        return Err(if bytes.len() as u64 >= NODE_NAME_FILE_BYTES_MAX {
            format!("longer than {} bytes", NAME_BYTES_MAX + 1)
        } else {
            "it does not end with a newline".to_owned()
        });
    };
    if name.is_empty() {
        return Err("it holds no name".to_owned());
    }
    String::from_utf8(name.to_vec()).map_err(|_| "it is not valid utf-8".to_owned())
}

/// Parses a stored identity key file.
fn parse_identity(bytes: &[u8]) -> Result<Identity, String> {
    if bytes.len() != IDENTITY_FILE_BYTES {
        return Err(format!("expected {IDENTITY_FILE_BYTES} bytes, found {}", bytes.len()));
    }
    let mut seed = [0; KEY_BYTES];
    let mut public = [0; KEY_BYTES];
    seed.copy_from_slice(&bytes[..KEY_BYTES]);
    public.copy_from_slice(&bytes[KEY_BYTES..]);
    Identity::from_stored(seed, public).map_err(|_| {
        "the public key is not the one the seed derives (a key file written before entries were \
         signed holds an X25519 secret, not an Ed25519 seed: move it aside to make a new identity)"
            .to_owned()
    })
}

/// Where a rewrite of the WAL at `path` writes the new file before renaming it: `ferry.wal.tmp`.
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Creates (or truncates) a file readable only by its owner.
fn private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes the names in `directory` durable.
fn sync_directory(directory: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(directory)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = directory;
    Ok(())
}

/// Takes an exclusive advisory lock on `file` without waiting; false when another holds it.
#[cfg(unix)]
fn lock_exclusive(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only reads the descriptor number, and `file` keeps it open for the call.
    let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if result == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    if error.kind() == io::ErrorKind::WouldBlock { Ok(false) } else { Err(error) }
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &File) -> io::Result<bool> {
    Ok(true)
}

/// The open WAL: appends are buffered in memory until a sync needs them on the file.
#[derive(Debug)]
pub(crate) struct WalFile {
    /// Shared with the sync thread, which fsyncs the handle each request names: after a
    /// [`replace`](Self::replace) the next syncs must reach the new file, not the old inode.
    file: Arc<File>,
    path: PathBuf,
    buffered: Vec<u8>,
}

/// One sync for the sync thread: its id and the file to make durable.
pub(crate) type SyncRequest = (u64, Arc<File>);

impl WalFile {
    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `bytes` after everything appended before.
    ///
    /// # Errors
    /// A write error when the buffer had to be written out.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buffered.extend_from_slice(bytes);
        if self.buffered.len() >= APPEND_BUFFER_BYTES_MAX { self.flush() } else { Ok(()) }
    }

    /// The sync request for `sync_id`: flush first, so every earlier append is in the file.
    pub(crate) fn sync_request(&self, sync_id: u64) -> SyncRequest {
        (sync_id, Arc::clone(&self.file))
    }

    /// Replaces the whole file with `bytes` (a compaction, PROTOCOL.md 8.11) so that a crash
    /// at any point leaves the old file or the new one whole: write `ferry.wal.tmp`, fsync it,
    /// rename it over the WAL, fsync the directory, then append to the new file. Appends
    /// still buffered are dropped: the node's image already holds every entry they carried.
    ///
    /// # Errors
    /// A write, sync, rename, directory sync or open error. Before the rename the old file
    /// is still the WAL; after it the new one may or may not be, until the directory sync
    /// (which does nothing on systems other than Unix). Either holds every durable entry,
    /// and the caller stops the node on any error, so the next start reads one of them.
    pub(crate) fn replace(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buffered.clear();
        let directory = self.path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let temporary = temporary_path(&self.path);
        let mut file = private_file(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, &self.path)?;
        sync_directory(&directory)?;
        self.file = Arc::new(OpenOptions::new().read(true).append(true).open(&self.path)?);
        Ok(())
    }

    /// Writes every buffered append to the file (not yet durable).
    ///
    /// # Errors
    /// A write error.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if !self.buffered.is_empty() {
            (&*self.file).write_all(&self.buffered)?;
            self.buffered.clear();
        }
        Ok(())
    }

    /// Writes every buffered append and makes the whole file durable, on this thread: for
    /// the last moment of a clean stop, when nothing waits on the event loop any more.
    ///
    /// # Errors
    /// A write or sync error.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.file.sync_data()
    }

    /// Cuts the file to `length_bytes` and makes that durable.
    ///
    /// # Errors
    /// A write, truncate or sync error.
    pub(crate) fn truncate(&mut self, length_bytes: u64) -> io::Result<()> {
        self.flush()?;
        self.file.set_len(length_bytes)?;
        self.file.sync_data()
    }

    /// Starts the thread that performs syncs off the event loop. Send it a
    /// [`sync_request`](Self::sync_request) only after [`flush`](Self::flush); it answers
    /// `Input::Synced` once `sync_data` returned, or `Input::SyncFailed`.
    ///
    /// # Errors
    /// When the thread cannot start.
    pub(crate) fn spawn_syncer(inputs: SyncSender<Input>) -> io::Result<Sender<SyncRequest>> {
        let (requests, received) = mpsc::channel::<SyncRequest>();
        std::thread::Builder::new().name("ferry-wal-sync".to_owned()).spawn(move || {
            for (sync_id, file) in received {
                let input = match file.sync_data() {
                    Ok(()) => Input::Synced { sync_id },
                    Err(error) => Input::SyncFailed { error },
                };
                if inputs.send(input).is_err() {
                    return;
                }
            }
        })?;
        Ok(requests)
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("ferry-wal-file-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        path
    }

    #[test]
    fn identity_is_created_private_and_reused() {
        let path = scratch("identity");
        let directory = DataDirectory::open(&path).expect("a fresh temp directory opens");
        let first = directory.identity(&mut ChaCha20Rng::seed_from_u64(1)).expect("created");
        let again = directory.identity(&mut ChaCha20Rng::seed_from_u64(2)).expect("read back");
        assert_eq!(first, again, "the stored key is reused, not regenerated");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path.join(IDENTITY_FILE_NAME)).expect("exists").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(path.join(IDENTITY_FILE_NAME), b"short").expect("writable");
        let error = directory.identity(&mut ChaCha20Rng::seed_from_u64(3)).expect_err("damaged");
        assert_eq!(
            error.to_string(),
            format!(
                "identity key {} is unusable: expected 64 bytes, found 5",
                path.join(IDENTITY_FILE_NAME).display()
            )
        );
        drop(directory);
        let _ = fs::remove_dir_all(&path);
    }

    #[test]
    fn the_directory_remembers_its_node_name() {
        // Goal: the first start records the name, the same name is let in again, another
        // name or a damaged file is refused with its exact error.
        let path = scratch("name");
        let directory = DataDirectory::open(&path).expect("a fresh temp directory opens");
        assert_eq!(directory.claim_name("a").expect("recorded"), NameClaim::Recorded { adopted: false });
        assert_eq!(fs::read(path.join(NODE_NAME_FILE_NAME)).expect("written"), b"a\n");
        assert!(!path.join(format!("{NODE_NAME_FILE_NAME}.tmp")).exists(), "renamed into place");
        assert_eq!(directory.claim_name("a").expect("the same node"), NameClaim::Matched);
        assert_eq!(
            directory.claim_name("b").map_err(|error| error.to_string()),
            Err(format!(
                "data directory {} belongs to node \"a\", not \"b\" (each node needs a directory of its own)",
                path.display()
            ))
        );
        assert_eq!(
            fs::read(path.join(NODE_NAME_FILE_NAME)).expect("kept"),
            b"a\n",
            "a refusal writes nothing"
        );
        let name_file = path.join(NODE_NAME_FILE_NAME);
        for (bytes, reason) in [
            (&b"a"[..], "it does not end with a newline".to_owned()),
            (b"\n", "it holds no name".to_owned()),
            (b"\xff\n", "it is not valid utf-8".to_owned()),
            (&[b'x'; 300], format!("longer than {} bytes", NAME_BYTES_MAX + 1)),
        ] {
            fs::write(&name_file, bytes).expect("writable");
            assert_eq!(
                directory.claim_name("a").map_err(|error| error.to_string()),
                Err(format!("node name file {} is unusable: {reason}", name_file.display()))
            );
        }
        fs::write(&name_file, "\u{1b}[2J\n").expect("writable");
        let error = directory.claim_name("a").expect_err("another name").to_string();
        assert!(error.contains("belongs to node \"\\u{1b}[2J\""), "escaped: {error}");
        // Writes without a name are nobody's to take: the user must say whose they are.
        fs::remove_file(&name_file).expect("exists");
        fs::write(path.join(WAL_FILE_NAME), b"records").expect("writable");
        assert_eq!(
            directory.claim_name("c").map_err(|error| error.to_string()),
            Err(format!(
                "data directory {} holds a wal of 7 bytes but no node.name: if it is node \"c\"'s, write \"c\" \
                 into {}, else use another directory",
                path.display(),
                name_file.display()
            ))
        );
        assert!(!name_file.exists(), "nothing was recorded");
        // An empty WAL holds nothing of anyone's: the directory is taken.
        fs::write(path.join(WAL_FILE_NAME), b"").expect("writable");
        assert_eq!(directory.claim_name("c").expect("adopted"), NameClaim::Recorded { adopted: true });
        drop(directory);
        let _ = fs::remove_dir_all(&path);
    }

    #[test]
    fn a_second_opener_is_refused() {
        let path = scratch("lock");
        let directory = DataDirectory::open(&path).expect("a fresh temp directory opens");
        let error = DataDirectory::open(&path).expect_err("locked");
        assert_eq!(
            error.to_string(),
            format!("data directory {} is in use by another ferry node", path.display())
        );
        drop(directory);
        DataDirectory::open(&path).expect("the lock is released with the first");
        let _ = fs::remove_dir_all(&path);
    }

    #[test]
    fn appends_reach_the_file_on_flush_and_truncate_cuts() {
        let path = scratch("append");
        let directory = DataDirectory::open(&path).expect("a fresh temp directory opens");
        let (mut wal, bytes) = directory.open_wal().expect("created");
        assert_eq!(bytes, b"");
        wal.append(b"abc").expect("buffered");
        assert_eq!(fs::read(wal.path()).expect("exists"), b"");
        wal.flush().expect("written");
        wal.append(b"def").expect("buffered");
        wal.truncate(2).expect("cut");
        wal.append(b"xy").expect("buffered");
        wal.flush().expect("written");
        drop(wal);
        let (_, bytes) = directory.open_wal().expect("reopened");
        assert_eq!(bytes, b"abxy", "the truncate applies after the buffered append, in order");
        drop(directory);
        let _ = fs::remove_dir_all(&path);
    }
}
