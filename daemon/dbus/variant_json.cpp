// The D-Bus shapes of the service layer's JSON.
#include "daemon/dbus/variant_json.h"

#include "common/errors.h"

#include <cstdint>
#include <limits>

namespace zerobyte::dbus {

using nlohmann::json;

namespace {

bool allStrings(const json& array) {
  for (const auto& e : array)
    if (!e.is_string()) return false;
  return true;
}

bool allObjects(const json& array) {
  for (const auto& e : array)
    if (!e.is_object()) return false;
  return !array.empty();
}

}  // namespace

sdbus::Variant toVariant(const json& value) {
  switch (value.type()) {
    case json::value_t::string: return sdbus::Variant(value.get<std::string>());
    case json::value_t::boolean: return sdbus::Variant(value.get<bool>());
    case json::value_t::number_integer: return sdbus::Variant(value.get<int64_t>());
    case json::value_t::number_unsigned: {
      uint64_t v = value.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return sdbus::Variant(v);
      return sdbus::Variant(static_cast<int64_t>(v));
    }
    case json::value_t::number_float: return sdbus::Variant(value.get<double>());
    case json::value_t::object: return sdbus::Variant(toVardict(value));
    case json::value_t::array: {
      if (allStrings(value)) return sdbus::Variant(value.get<std::vector<std::string>>());
      if (allObjects(value)) return sdbus::Variant(toVardictList(value));
      std::vector<sdbus::Variant> items;
      for (const auto& e : value)
        if (!e.is_null()) items.push_back(toVariant(e));
      return sdbus::Variant(items);
    }
    default: break;
  }
  throw Error(ErrorCode::Internal, "a null or binary value has no D-Bus form");
}

Vardict toVardict(const json& object) {
  Vardict dict;
  if (!object.is_object()) return dict;
  for (auto it = object.begin(); it != object.end(); ++it)
    if (!it->is_null()) dict.emplace(it.key(), toVariant(*it));
  return dict;
}

std::vector<Vardict> toVardictList(const json& array) {
  std::vector<Vardict> list;
  if (!array.is_array()) return list;
  list.reserve(array.size());
  for (const auto& e : array) list.push_back(toVardict(e));
  return list;
}

json fromVariant(const sdbus::Variant& value, const std::string& key) {
  const std::string type = value.peekValueType();
  if (type == "s") return value.get<std::string>();
  if (type == "b") return value.get<bool>();
  if (type == "y") return value.get<uint8_t>();
  if (type == "n") return value.get<int16_t>();
  if (type == "q") return value.get<uint16_t>();
  if (type == "i") return value.get<int32_t>();
  if (type == "u") return value.get<uint32_t>();
  if (type == "x") return value.get<int64_t>();
  if (type == "t") return value.get<uint64_t>();
  if (type == "d") return value.get<double>();
  if (type == "as") return value.get<std::vector<std::string>>();
  throw Error(ErrorCode::InvalidParameter,
              "option \"" + key + "\" has the D-Bus type \"" + type + "\"; use s, b, an integer type, d or as",
              {{"parameter", key}});
}

std::string encodePathElement(const std::string& id) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : id) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('_');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out.empty() ? "_" : out;
}

}  // namespace zerobyte::dbus
