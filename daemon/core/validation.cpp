// Validation of names, paths, tags and patterns that come from requests and the config file.
#include "daemon/core/validation.h"

#include "common/errors.h"

#include <cstdint>
#include <optional>

namespace zerobyte::core {
namespace {

constexpr size_t kMaxNameLength = 63;
constexpr size_t kMaxPathLength = 4095;  // PATH_MAX less the terminating NUL
constexpr size_t kMaxTagLength = 128;
constexpr size_t kMaxPatternLength = 4095;
constexpr size_t kMinSnapshotIdLength = 8;
constexpr size_t kMaxSnapshotIdLength = 64;
// Longer values are cut in messages: a 4 KiB path must not flood the journal.
constexpr size_t kMaxQuotedBytes = 120;

constexpr std::string_view kNameRule =
    "use 1-63 characters from a-z, 0-9, '_' and '-', starting with a letter or digit";

bool isControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

char hexDigit(unsigned value) { return "0123456789abcdef"[value & 0xf]; }

void appendHexEscape(std::string& out, unsigned char c) {
  out += "\\x";
  out += hexDigit(c >> 4);
  out += hexDigit(c);
}

// Length of the well-formed UTF-8 sequence at the start of `s` (overlong forms, surrogates
// and code points above U+10FFFF are not well-formed), with its code point.
std::optional<std::pair<size_t, uint32_t>> decodeUtf8(std::string_view s) {
  auto lead = static_cast<unsigned char>(s[0]);
  size_t length = 0;
  uint32_t cp = 0;
  uint32_t minimum = 0;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, cp = lead & 0x1f, minimum = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, cp = lead & 0x0f, minimum = 0x800;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, cp = lead & 0x07, minimum = 0x10000;
  } else {
    return std::nullopt;
  }
  if (s.size() < length) return std::nullopt;
  for (size_t i = 1; i < length; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xc0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < minimum || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
  return std::pair{length, cp};
}

// The first control character in `s` as it would appear inside a quoted value.
std::optional<std::string> firstControlCharacter(std::string_view s) {
  for (char c : s)
    if (isControl(static_cast<unsigned char>(c))) {
      std::string quoted = quoteValue(std::string_view(&c, 1));
      return quoted.substr(1, quoted.size() - 2);
    }
  return std::nullopt;
}

[[noreturn]] void fail(std::string_view what, std::string_view value, std::string_view reason) {
  std::string message(what);
  message += ' ';
  message += quoteValue(value);
  message += " is not valid: ";
  message += reason;
  throw Error(ErrorCode::InvalidArgument, std::move(message));
}

std::string controlCharacterReason(const std::string& escaped) {
  return "it contains the control character " + escaped + "; remove it";
}

std::string tooLongReason(size_t length, size_t limit) {
  return "it is " + std::to_string(length) + " bytes long; the limit is " + std::to_string(limit);
}

// Why `path` is not an absolute, normalised path, or nothing when it is one.
std::optional<std::string> pathProblem(std::string_view path, bool allowTrailingSlash) {
  if (path.empty()) return "it is empty; give an absolute path such as /srv/data";
  if (auto control = firstControlCharacter(path)) return controlCharacterReason(*control);
  if (path.size() > kMaxPathLength) return tooLongReason(path.size(), kMaxPathLength);
  if (path.front() != '/') return std::string("it is relative; give an absolute path that starts with '/'");
  if (path == "/") return std::nullopt;

  std::string_view rest = path.substr(1);
  while (true) {
    size_t slash = rest.find('/');
    std::string_view component = rest.substr(0, slash);
    bool last = slash == std::string_view::npos;
    if (component.empty()) {
      if (last) {
        if (allowTrailingSlash) return std::nullopt;
        return std::string("it ends with '/'; remove the trailing '/'");
      }
      return std::string("it contains an empty component (\"//\"); use a single '/' between components");
    }
    if (component == "." || component == "..") {
      return "it contains a \"" + std::string(component) +
             "\" component; write the path without \".\" and \"..\" components";
    }
    if (last) return std::nullopt;
    rest.remove_prefix(slash + 1);
  }
}

}  // namespace

std::string quoteValue(std::string_view value) {
  std::string out = "\"";
  size_t consumed = 0;
  while (consumed < value.size()) {
    if (consumed >= kMaxQuotedBytes) {
      out += "\"... (" + std::to_string(value.size()) + " bytes in all)";
      return out;
    }
    auto c = static_cast<unsigned char>(value[consumed]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (isControl(c))
            appendHexEscape(out, c);
          else
            out += static_cast<char>(c);
      }
      ++consumed;
      continue;
    }
    auto decoded = decodeUtf8(value.substr(consumed));
    if (!decoded) {
      appendHexEscape(out, c);
      ++consumed;
      continue;
    }
    auto [length, cp] = *decoded;
    if (cp <= 0x9f) {
      // C1 controls (U+0080-U+009F) include NEL, which some terminals treat as a newline.
      out += "\\u00";
      out += hexDigit(cp >> 4);
      out += hexDigit(cp);
    } else {
      out += value.substr(consumed, length);
    }
    consumed += length;
  }
  out += '"';
  return out;
}

bool isValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  auto lowerOrDigit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lowerOrDigit(name.front())) return false;
  for (char c : name)
    if (!lowerOrDigit(c) && c != '_' && c != '-') return false;
  return true;
}

void validateName(std::string_view name, std::string_view what) {
  if (isValidName(name)) return;
  if (name.empty()) fail(what, name, "it is empty; " + std::string(kNameRule));
  if (name.size() > kMaxNameLength)
    fail(what, name, "it is " + std::to_string(name.size()) + " bytes long; " + std::string(kNameRule));
  fail(what, name, kNameRule);
}

void validateAbsolutePath(std::string_view path, std::string_view what) {
  if (auto problem = pathProblem(path, false)) fail(what, path, *problem);
}

void validateSnapshotPath(std::string_view path, std::string_view what) {
  if (auto problem = pathProblem(path, true)) fail(what, path, *problem);
}

void validateTag(std::string_view tag) {
  constexpr std::string_view kWhat = "tag";
  if (tag.empty()) fail(kWhat, tag, "it is empty; give 1-128 bytes without ',' or control characters");
  if (auto control = firstControlCharacter(tag)) fail(kWhat, tag, controlCharacterReason(*control));
  if (tag.size() > kMaxTagLength) fail(kWhat, tag, tooLongReason(tag.size(), kMaxTagLength));
  if (tag.find(',') != std::string_view::npos)
    fail(kWhat, tag, "it contains ','; restic splits tags at commas, so give each tag on its own");
}

void validateExcludePattern(std::string_view pattern) {
  constexpr std::string_view kWhat = "exclude pattern";
  if (pattern.empty()) fail(kWhat, pattern, "it is empty; give a restic pattern such as *.tmp or /home/*/.cache");
  if (auto control = firstControlCharacter(pattern)) fail(kWhat, pattern, controlCharacterReason(*control));
  if (pattern.size() > kMaxPatternLength) fail(kWhat, pattern, tooLongReason(pattern.size(), kMaxPatternLength));
}

void validateSnapshotId(std::string_view id) {
  if (id == "latest") return;
  bool hex = !id.empty();
  bool upper = false;
  for (char c : id) {
    if (c >= 'A' && c <= 'F')
      upper = true;
    else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      hex = false;
  }
  bool lengthOk = id.size() >= kMinSnapshotIdLength && id.size() <= kMaxSnapshotIdLength;
  if (hex && !upper && lengthOk) return;
  constexpr std::string_view kRule =
      "use the 8-64 lowercase hexadecimal characters of a snapshot id or short id as restic prints them, "
      "or \"latest\"";
  if (hex && upper && lengthOk) fail("snapshot id", id, "write it in lowercase; " + std::string(kRule));
  fail("snapshot id", id, kRule);
}

namespace {

[[noreturn]] void invalidParameter(const std::string& message, const char* parameter) {
  throw Error(ErrorCode::InvalidArgument, message, {{"parameter", parameter}});
}

bool allDigits(std::string_view s) {
  return !s.empty() && s.size() <= 12 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

void validateIncludePath(std::string_view path) {
  constexpr const char* kParameter = "includes";
  if (path.empty()) invalidParameter("an include path is empty; give a path inside the volume such as Documents", kParameter);
  if (path.size() > 4096) invalidParameter("an include path is longer than 4096 bytes", kParameter);
  if (auto control = firstControlCharacter(path))
    invalidParameter("include path " + quoteValue(path) + " is not valid: " + controlCharacterReason(*control), kParameter);
  if (path.front() == '/')
    invalidParameter("include path " + quoteValue(path) +
                         " is absolute; give it relative to the volume's directory (\"Documents\", not \"/home/alice/Documents\")",
                     kParameter);
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..")
      invalidParameter("include path " + quoteValue(path) + " leaves the volume through \"..\"", kParameter);
    start = end + 1;
  }
}

void validateMarkerName(std::string_view name) {
  if (name.empty() || name.size() > 255 || firstControlCharacter(name) || name.find('/') != std::string_view::npos || name == "." ||
      name == "..")
    invalidParameter("exclude-if-present marker " + quoteValue(name) +
                         " is not a file name; give a name such as .nobackup (1-255 bytes, no '/' or control characters)",
                     "exclude_if_present");
}

void validateUserTag(std::string_view tag, const char* parameter) {
  validateTag(tag);
  if (tag.substr(0, kScheduleTagPrefix.size()) == kScheduleTagPrefix)
    invalidParameter("tag " + quoteValue(tag) + " is reserved: zerobyted tags each schedule's snapshots with " +
                         std::string(kScheduleTagPrefix) + "NAME so that its retention finds them; choose another tag",
                     parameter);
}

void validateReadDataSubset(std::string_view subset) {
  auto fail = [&] {
    invalidParameter("read-data subset " + quoteValue(subset.substr(0, 40)) +
                         " is not valid; give n/t (one part of t, e.g. 1/5), a percentage (e.g. 10% or 2.5%) or a size (e.g. 500M, 2G)",
                     "read_data_subset");
  };
  if (auto slash = subset.find('/'); slash != std::string_view::npos) {
    auto n = subset.substr(0, slash), t = subset.substr(slash + 1);
    if (!allDigits(n) || !allDigits(t)) fail();
    auto a = std::stoull(std::string(n)), b = std::stoull(std::string(t));
    if (a < 1 || a > b) fail();
    return;
  }
  if (subset.size() >= 2 && subset.back() == '%') {
    auto number = subset.substr(0, subset.size() - 1);
    auto dot = number.find('.');
    auto whole = number.substr(0, dot);
    auto fraction = dot == std::string_view::npos ? std::string_view("0") : number.substr(dot + 1);
    if (!allDigits(whole) || !allDigits(fraction)) fail();
    double value = std::stod(std::string(number));
    if (!(value > 0.0) || value > 100.0) fail();
    return;
  }
  if (subset.size() >= 2 && std::string_view("KMGT").find(subset.back()) != std::string_view::npos) {
    auto digits = subset.substr(0, subset.size() - 1);
    if (!allDigits(digits) || std::stoull(std::string(digits)) == 0) fail();
    return;
  }
  fail();
}

void validateCompression(std::string_view compression) {
  if (compression != "auto" && compression != "off" && compression != "max")
    invalidParameter("compression " + quoteValue(compression) + " is not one of auto, off, max", "compression");
}

}  // namespace zerobyte::core
