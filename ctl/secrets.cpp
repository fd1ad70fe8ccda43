// zerobytectl secrets: rotating the master key that seals the stored secrets.
#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/paths.h"
#include "ctl/record_format.h"

#include <iostream>
#include <memory>

namespace zerobyte::ctl {
namespace {

struct RotateOptions {
  std::string keyFile;
  std::string credential;
};

int rotateMasterKey(Context& ctx, const RotateOptions& options) {
  nlohmann::json parameters = {{"source", "generate"}};
  std::string from = "a new random key";
  if (!options.keyFile.empty()) {
    // The daemon reads the file itself, from its own working directory.
    const std::string path = absolutePath(options.keyFile);
    parameters = {{"source", "file"}, {"path", path}};
    from = "the key in " + path;
  } else if (!options.credential.empty()) {
    parameters = {{"source", "credential"}, {"credential", options.credential}};
    from = "the credential " + options.credential;
  }
  const nlohmann::json reply = ctx.call("RotateMasterKey", parameters);
  if (ctx.json) {
    ctx.printJson(reply);
    return 0;
  }
  std::cout << sanitize("Master key rotated to " + from + " (key id " + field(reply, "key_id", "?") + "); " +
                        countOf(countField(reply, "secrets"), "stored secret") + " re-sealed.")
            << "\n";
  if (!options.credential.empty())
    std::cout << sanitize("zerobyted reads the master key from the credential " + options.credential +
                          " from now on; keep it in zerobyted.service.")
              << "\n";
  return 0;
}

}  // namespace

void addSecretsCommands(CLI::App& app, Context& ctx) {
  CLI::App* secrets = addCommand(app, ctx, "secrets", "Manage the master key that seals the stored secrets");
  secrets->require_subcommand(1);

  auto options = std::make_shared<RotateOptions>();
  CLI::App* rotate = addCommand(*secrets, ctx, "rotate-master-key",
                                "Re-seal every stored secret with a new master key, in one transaction");
  auto* file = rotate
                   ->add_option("--new-key-file", options->keyFile,
                                "Use the key in FILE (read by zerobyted: owned by root, mode 0600 or stricter, at "
                                "least 32 bytes) instead of a generated one")
                   ->type_name("FILE");
  auto* credential = rotate
                         ->add_option("--from-credential", options->credential,
                                      "Use the systemd credential NAME of zerobyted.service (LoadCredentialEncrypted=) "
                                      "and read the master key from it from now on")
                         ->type_name("NAME");
  file->excludes(credential);
  credential->excludes(file);
  rotate->footer(
      "Without an option, zerobyted generates a random 256-bit key into its state directory\n"
      "(master.key). A key of more than 32 bytes is hashed with SHA-256. A crash at any moment\n"
      "leaves every secret under the old key or every secret under the new one.\n"
      "While the master key is a credential, only --from-credential is possible: add the new key\n"
      "to zerobyted.service under another name first, restart, then rotate.\n"
      "Examples:\n"
      "  zerobytectl secrets rotate-master-key\n"
      "  zerobytectl secrets rotate-master-key --from-credential zerobyte.master-key.2");
  rotate->callback([&ctx, options] { ctx.action = [&ctx, options] { return rotateMasterKey(ctx, *options); }; });
}

}  // namespace zerobyte::ctl
