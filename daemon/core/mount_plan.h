// Network and FUSE volumes: which drivers serve each type, validation of their fields, and the exact
// helper invocation (argv, files, stdin) that mounts one. Pure: no I/O; the mounter (daemon/mount) runs it.
#pragma once

#include "daemon/core/model.h"
#include "daemon/core/remote_fields.h"  // rcloneWantsObscured and the field checks network volumes share with repositories

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zerobyte::core {

// directory, sftp, smb, webdav, nfs, rclone.
bool isVolumeType(std::string_view type);
// The drivers that can mount a volume type, the default first: sftp: sshfs; smb: cifs, rclone; webdav: rclone,
// davfs; nfs: nfs; rclone: rclone. Empty for "directory".
std::vector<std::string> driversFor(std::string_view type);
// The request and configuration fields a network volume type takes besides name, type, driver, group and the
// common mount flags (read_write, auto_remount, keep_mounted, mount_options), in wire names.
std::vector<std::string> fieldsOf(std::string_view type);

// Whether the request or configuration key `key` is a field of a network volume of `type`: its own fields
// (fieldsOf), the ones every network type takes (driver, mount_options, read_write, auto_remount, keep_mounted),
// and the reference forms of its secrets (password_ref, private_key_ref, rclone_secret_options, rclone_secrets).
bool appliesTo(std::string_view type, std::string_view key);

// Extra mount options a volume may ask for, per driver (the configuration's daemon.mount_options replaces an entry).
using MountOptionPolicy = std::map<std::string, std::vector<std::string>>;
MountOptionPolicy defaultMountOptionPolicy();

// Which secrets a volume has (stored or referenced), for validation.
struct VolumeSecretsPresent {
  bool password = false;
  bool privateKey = false;
};

// Checks every field of a network volume of `type` and fills the driver's default when none was chosen.
// Throws Error(InvalidArgument) naming the field (details {"parameter": wire name}) and how to fix it.
void validateRemote(std::string_view type, VolumeRemote& remote, const VolumeSecretsPresent& secrets,
                    const MountOptionPolicy& policy);
// A password or key that ends up in a credentials file or on a helper's stdin: no NUL, no newline (cifs and
// sshfs read one line), at most 64 KiB for a key (which may have newlines), 1 KiB for a password.
void validateMountPassword(std::string_view password);
void validatePrivateKey(std::string_view key);

// Secrets resolved for one mount; rclone option values already in rclone's obscured form where it wants them.
struct MountSecrets {
  std::string password;
  std::string privateKey;
  std::vector<std::pair<std::string, std::string>> rcloneOptions;  // name, value for the secret options
  std::string obscuredPassword;  // the password as rclone's config wants it (rclone driver)
};

// A file the mounter writes (0600, in a 0700 directory of its own) before the helper runs and removes after.
struct MountFile {
  std::string name;  // a plain file name inside `fileDir`
  std::string content;
};

// How one volume is mounted: the helper, its arguments after argv[0], the files and stdin it gets.
struct MountPlan {
  std::string helper;             // looked up on the configured helper path: sshfs, rclone, mount.davfs, mount.cifs, mount.nfs
  std::vector<std::string> args;  // argv[1..]: never a secret
  std::vector<MountFile> files;
  std::optional<std::string> stdinSecret;  // sshfs password_stdin
  std::string kernelFileSystem;            // cifs, nfs: the file system the kernel must have
  bool fuse = false;                       // a FUSE file system (restic then ignores inode numbers)
  // The helper stays in the foreground as long as the mount (the rclone bridge's sshfs -f -o passive): the mount is
  // ready when it appears in the mount table and answers.
  bool foreground = false;
  // The rclone driver is a bridge: `serverHelper` (rclone serve sftp --stdio) serves the remote over SFTP on one end
  // of a socket pair and `helper` (sshfs -f -o passive) mounts it from the other; both run as long as the mount.
  // (rclone mount answers listxattr with EIO, and restic 0.14 then reads no file through it.)
  std::string serverHelper;
  std::vector<std::string> serverArgs;
};

// What planMount needs besides the volume: the mount point, a directory for the files (no ',' in either: they end
// up in option strings), a cache directory for the helper, and the environment-free secrets.
struct MountContext {
  std::string target;
  std::string fileDir;
  std::string cacheDir;
};

// Throws Error(InvalidArgument) if the context's paths cannot be used in an option string.
MountPlan planMount(const Volume& volume, const MountSecrets& secrets, const MountContext& context);

// The remote as shown to people: "sftp://backup@nas.example:2222/srv/data", "//nas/share", "http://dav/…" (never a secret).
std::string describeRemote(const Volume& volume);

}  // namespace zerobyte::core
