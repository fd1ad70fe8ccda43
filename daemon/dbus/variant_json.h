// The D-Bus shapes of the service layer's JSON: records as a{sv}, options from a{sv}.
#pragma once

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

#include <map>
#include <string>
#include <vector>

namespace zerobyte::dbus {

using Vardict = std::map<std::string, sdbus::Variant>;

// A JSON value as a variant: string "s", integer "x" (an unsigned above INT64_MAX "t"), boolean "b",
// number "d", object "a{sv}" (null members left out), array of strings (or empty) "as", array of
// objects "aa{sv}", any other array "av". null has no D-Bus form: callers leave it out.
sdbus::Variant toVariant(const nlohmann::json& value);
// A JSON object as a{sv}, null members left out.
Vardict toVardict(const nlohmann::json& object);
// A JSON array of objects as aa{sv}.
std::vector<Vardict> toVardictList(const nlohmann::json& array);

// An option's value as JSON: s, b, y, n, q, i, u, x, t, d and as are accepted; anything else is
// InvalidParameter naming `key`.
nlohmann::json fromVariant(const sdbus::Variant& value, const std::string& key);

// An id as one element of an object path ([A-Za-z0-9_]): other bytes become _XX (hex), "_" included.
std::string encodePathElement(const std::string& id);

}  // namespace zerobyte::dbus
