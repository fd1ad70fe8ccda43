// Parsing `restic key list --json`: the repository's keys and which one the password opened.
#include "daemon/restic/restic.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace zerobyte::restic {
namespace {

using nlohmann::json;

constexpr size_t kMaxQuoted = 200;

bool isKeyId(const std::string& id) {
  return id.size() >= 8 && id.size() <= 64 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string stringField(const json& entry, const char* key) {
  auto it = entry.find(key);
  return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::vector<Key> parseKeyList(std::string_view text) {
  const auto fail = [](const std::string& why) {
    return Error(ErrorCode::Failed, "cannot parse the key list from restic: " + why.substr(0, kMaxQuoted));
  };
  json document = json::parse(text.begin(), text.end(), nullptr, false);
  if (document.is_discarded()) throw fail("the output is not JSON");
  if (!document.is_array()) throw fail("expected a JSON list of keys, got " + std::string(document.type_name()));
  std::vector<Key> keys;
  for (size_t i = 0; i < document.size(); ++i) {
    const json& entry = document[i];
    if (!entry.is_object()) throw fail("entry " + std::to_string(i + 1) + " is not an object");
    Key key;
    key.id = stringField(entry, "id");
    if (!isKeyId(key.id)) throw fail("entry " + std::to_string(i + 1) + " has no key id of hex digits");
    auto current = entry.find("current");
    key.current = current != entry.end() && current->is_boolean() && current->get<bool>();
    key.userName = stringField(entry, "userName");
    key.hostName = stringField(entry, "hostName");
    key.created = stringField(entry, "created");
    keys.push_back(std::move(key));
  }
  return keys;
}

std::optional<std::string> currentKeyId(const std::vector<Key>& keys) {
  for (const auto& key : keys)
    if (key.current) return key.id;
  return std::nullopt;
}

}  // namespace zerobyte::restic
