// rclone's "obscured" form of a password for its configuration file (what `rclone obscure` prints).
#pragma once

#include <string>
#include <string_view>

namespace zerobyte::mount {

// AES-256-CTR under rclone's fixed, public key with a random IV, as unpadded base64url of IV and ciphertext.
// Not encryption: anyone can reverse it. It only lets rclone read the value from the 0600 file zerobyted writes
// for one mount and removes right after.
std::string rcloneObscure(std::string_view plain);

}  // namespace zerobyte::mount
