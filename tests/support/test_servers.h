// Real servers for the remote backends, on 127.0.0.1 only, for tests: sshd (sftp), rclone's WebDAV
// and restic REST servers, smbd, and s3rver (S3 over HTTPS). Each runs in its own session (setsid) from its own temporary
// directory under /tmp (mode 0755, removed by the destructor unless ZBTEST_KEEP=1), on a free port
// chosen when it first starts. The constructors start the server and return once it listens;
// every wait is bounded and a failure throws std::runtime_error carrying the tail of the server's
// log. No shell is ever run. All of them need root.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace zbtest {

// A file's whole content, "" when it cannot be opened; with read(2), so that a /proc file of a process that exits
// while it is read ends the read (a stream throws ESRCH from its buffer).
std::string readAll(const std::string& path);

// Each server runs under a small "reaper" process forked from the test process: a child
// subreaper in a session of its own (setsid) that reaps whatever the server leaves behind (sshd's
// connection processes outlive their parents), so none of it ever becomes the test process's
// zombie, and that stops the server when the test process dies. It exits by itself once the
// server and all its children are gone.
//
// For a test process that reaps children it did not start (the integration harness is a child
// subreaper and kills "adopted" processes): `started` is called with the reaper's pid (the only
// child of the test process a server has) right after the fork, `stopped` right after it was
// reaped. With the integration harness: setServerProcessHooks(&zbtest::ownProcess,
// &zbtest::disownProcess). nullptr: no call.
using ServerProcessHook = void (*)(pid_t);
void setServerProcessHooks(ServerProcessHook started, ServerProcessHook stopped);

// One server process: its directory, port, log and lifetime. The derived classes start it.
class TestServer {
 public:
  virtual ~TestServer();  // stop(), then removes dir() (ZBTEST_KEEP=1 keeps it)
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  // SIGTERM to the server's pid, up to 5 s for its exit, then SIGKILL; then the same for whatever
  // it left behind (connection processes), and reaps the reaper. The port stays for start().
  // Nothing when not running.
  void stop();
  // Brings a stopped server back on the same port (throws if that port has been taken meanwhile).
  // Nothing when running.
  void start();
  // Whether it was started and not stopped (a server that crashed still counts: see pid()).
  bool running() const { return m_reaperPid > 0; }

  int port() const { return m_port; }
  std::string host() const { return "127.0.0.1"; }
  pid_t pid() const { return m_pid; }                // the server itself (sshd, smbd, rclone, node); -1 when stopped
  pid_t reaperPid() const { return m_reaperPid; }    // its parent, the test process's child; -1 when stopped
  // The temporary directory: configuration, keys, log, served data.
  const std::filesystem::path& dir() const { return m_dir; }
  std::filesystem::path logPath() const;
  // Everything the server printed (all starts), and its last `bytes`.
  std::string log() const;
  std::string logTail(size_t bytes = 8192) const;
  // Milliseconds the last start took, from fork to listening.
  long startMilliseconds() const { return m_startMilliseconds; }

 protected:
  explicit TestServer(const std::string& kind);  // makes dir(); the derived constructor calls startFirst()
  // The program and its arguments for port(); called before each start.
  virtual std::vector<std::string> command() const = 0;
  // Called before each start, e.g. to write a configuration file naming port().
  virtual void configure() {}
  // Picks a free port and starts; picks another when the server reports the port as taken.
  void startFirst();
  // Throws std::runtime_error("<kind> test server (<dir>): <what>", then the log's tail).
  [[noreturn]] void fail(const std::string& what) const;
  const std::string& kind() const { return m_kind; }

 private:
  enum class Outcome { listening, portTaken };
  Outcome launch();

  std::string m_kind;
  std::filesystem::path m_dir;
  int m_port = 0;
  pid_t m_pid = -1;
  unsigned long long m_serverStart = 0;  // the server's start time (/proc/PID/stat field 22)
  pid_t m_reaperPid = -1;
  long m_startMilliseconds = 0;
};

struct SshServerOptions {
  // A test user. Its password and authorized keys are changed, so only a user made by a test
  // server (comment "zerobyte test server user") is accepted; root, system accounts and anyone
  // else's are refused (std::runtime_error).
  std::string user = "zbtsftp";
};

// sshd -D -e -f <dir>/sshd_config: password and public-key logins (UsePAM no), sftp by
// internal-sftp, only user() allowed. The user is created (useradd -m -c "zerobyte test server
// user") if missing and gets password() (chpasswd); a fresh ed25519 client key is added to
// ~/.ssh/authorized_keys (tagged with dir(), removed again by the destructor, stale tags of
// vanished servers pruned). The host key is fresh too and kept across stop()/start(). Creates
// /run/sshd (sshd's privilege separation directory) when missing.
class SshServer : public TestServer {
 public:
  using Options = SshServerOptions;
  explicit SshServer(Options options = {});
  ~SshServer() override;

  const std::string& user() const { return m_options.user; }
  // "sftp-Pass,word:1": a comma and a colon, which the product must carry intact.
  std::string password() const { return "sftp-Pass,word:1"; }
  std::filesystem::path clientKeyPath() const { return dir() / "client_ed25519"; }  // private key, 0600, no passphrase
  std::string clientKey() const;                                                  // its contents
  std::filesystem::path clientPublicKeyPath() const { return dir() / "client_ed25519.pub"; }
  // "[127.0.0.1]:PORT ssh-ed25519 AAAA…"
  std::string knownHostsLine() const;
  // A file holding knownHostsLine() (and a newline).
  std::filesystem::path knownHostsPath() const { return dir() / "known_hosts"; }
  std::filesystem::path hostKeyPath() const { return dir() / "ssh_host_ed25519_key"; }
  std::filesystem::path homeDir() const { return m_home; }

 protected:
  std::vector<std::string> command() const override;
  void configure() override;

 private:
  void authorizeClientKey();
  void removeClientKey() noexcept;

  Options m_options;
  std::filesystem::path m_home;
  bool m_keyInstalled = false;
};

// rclone serve webdav root() --addr 127.0.0.1:PORT --user U --pass P, with --dir-cache-time 0s so
// that files the test writes straight into root() are listed at once.
class WebdavServer : public TestServer {
 public:
  WebdavServer();

  std::string url() const;  // "http://127.0.0.1:PORT/"
  std::string user() const { return "zbtdav"; }
  // "dav Pass,1:x" (a space, a comma and a colon). rclone clients take it obscured.
  std::string password() const { return "dav Pass,1:x"; }
  std::filesystem::path root() const { return dir() / "root"; }  // the served directory (root's, 0755)

 protected:
  std::vector<std::string> command() const override;
};

struct SambaServerOptions {
  std::string user = "zbtsmb";  // a test user, accepted as SshServerOptions::user is
};

// smbd -s <dir>/smb.conf -F --no-process-group --debug-stdout -d 1 on 127.0.0.1:PORT (SMB2+,
// no NetBIOS), with a share "share" (path root(), read only = no, valid users = user()). Every
// samba directory and the passdb (tdbsam) are under dir(); the user is created (useradd -M -s
// /usr/sbin/nologin -c "zerobyte test server user") if missing and gets password() in that
// passdb only (smbpasswd -c <dir>/smb.conf -s -a).
class SambaServer : public TestServer {
 public:
  using Options = SambaServerOptions;
  explicit SambaServer(Options options = {});

  const std::string& user() const { return m_options.user; }
  std::string password() const { return "smb-Pass,1"; }
  std::string share() const { return "share"; }
  // The shared directory: owned by user() with mode 0777. What the test writes there as root
  // stays root's: chown it to user() if the client must change it.
  std::filesystem::path root() const { return dir() / "share"; }
  std::filesystem::path configPath() const { return dir() / "smb.conf"; }

 protected:
  std::vector<std::string> command() const override;
  void configure() override;

 private:
  Options m_options;
};

// rclone serve restic root() --addr 127.0.0.1:PORT --user U --pass P: a restic REST server, one
// repository per path ("rest:http://U:P@127.0.0.1:PORT/NAME"). stop()/start() for "the server
// went away during a backup".
class ResticRestServer : public TestServer {
 public:
  ResticRestServer();

  std::string url() const;  // "http://127.0.0.1:PORT/"
  std::string user() const { return "zbtrest"; }
  // "rest-Pass,1:x": restic 0.14 reads it from the URL as is or percent-encoded.
  std::string password() const { return "rest-Pass,1:x"; }
  std::filesystem::path root() const { return dir() / "repos"; }

 protected:
  std::vector<std::string> command() const override;
};

// s3rver (the npm package, major version 3) over HTTPS: --address 127.0.0.1 --port PORT
// --directory root() --key/--cert of a server certificate for IP 127.0.0.1 (subjectAltName) signed
// by a CA made for this server alone (caPath()); both made with the openssl program into dir() and
// kept across stop()/start(). The bucket() is created at every start (--configure-bucket; the data
// in root() stays), before the server listens. The program is
// /usr/local/lib/zerobyte-tests/node_modules/.bin/s3rver, installed there from the npm registry by
// `scripts/install-deps --tests` (ZBTEST_S3RVER names another); the constructor throws when it is
// missing. restic 0.14: "s3:" + url() + "/" + bucket() + "/PREFIX" with --cacert caPath() (0.14
// ignores RESTIC_CACERT) and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in its environment.
// s3rver knows one key pair, S3RVER / S3RVER, and of a V4-signed request (restic's) checks only
// the access key id: another id is refused (403 InvalidAccessKeyId), a wrong secret is not.
class S3Server : public TestServer {
 public:
  S3Server();

  std::string url() const;  // "https://127.0.0.1:PORT" (no slash at the end)
  std::string bucket() const { return "zbtest"; }
  // "s3:https://127.0.0.1:PORT/zbtest/PREFIX" (no slash and no PREFIX when PREFIX is empty).
  std::string resticRepository(const std::string& prefix) const;
  std::string accessKeyId() const { return "S3RVER"; }
  std::string secretAccessKey() const { return "S3RVER"; }
  // s3rver's --directory: one directory per bucket; object KEY is the file BUCKET/KEY._S3rver_object
  // (beside it KEY._S3rver_metadata.json and KEY._S3rver_object.md5).
  std::filesystem::path root() const { return dir() / "data"; }
  std::filesystem::path caPath() const { return dir() / "ca.pem"; }  // PEM of the CA that signed the server's certificate
  std::filesystem::path certPath() const { return dir() / "server.pem"; }
  std::filesystem::path keyPath() const { return dir() / "server.key"; }  // 0600
  // ZBTEST_S3RVER when set and not empty, else the place scripts/install-deps --tests installs it to.
  static std::string program();

 protected:
  std::vector<std::string> command() const override;
};

}  // namespace zbtest
