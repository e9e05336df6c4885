// The built-in `pcm` collection, derived from the matrix the app shows, so the tally always counts
// exactly the rows and levels on screen.
#include <boost/json.hpp>
#include <fmt/format.h>

#include <fstream>
#include <set>
#include <sstream>

#include "config/config.hpp"

namespace rtsync::config {

namespace {
bool valid_field(std::string_view s) {
  if (s.empty() || s.size() > 64 || s.front() == '_' || s == "id") return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
      return false;
  return true;
}
}  // namespace

CollectionConfig pcm_collection(const std::filesystem::path& matrix_json) {
  const std::string file = matrix_json.string();
  std::ifstream in(matrix_json);
  if (!in) throw ConfigError(fmt::format("{}: cannot read the PCM matrix", file));
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  auto doc = boost::json::parse(text.str(), ec);
  auto fail = [&](std::string_view what) { return ConfigError(fmt::format("{}: {}", file, what)); };
  if (ec || !doc.is_object()) throw fail("not a JSON object");
  auto* levels = doc.get_object().if_contains("levels");
  auto* rows = doc.get_object().if_contains("rows");
  if (!levels || !levels->is_array() || levels->get_array().empty()) throw fail("\"levels\" must be a non-empty array");
  if (!rows || !rows->is_array() || rows->get_array().empty()) throw fail("\"rows\" must be a non-empty array");

  std::vector<std::int64_t> level_ids;
  for (const auto& l : levels->get_array()) {
    const auto* id = l.is_object() ? l.get_object().if_contains("id") : nullptr;
    if (!id || !id->is_int64()) throw fail("every level needs an integer \"id\"");
    level_ids.push_back(id->get_int64());
  }
  if (std::set(level_ids.begin(), level_ids.end()).size() != level_ids.size()) throw fail("level ids must be unique");

  CollectionConfig c;
  c.per_user = true;
  c.read = CollectionConfig::Read::owner;
  c.write = CollectionConfig::Write::owner;
  // Rooms: a team's answers carry `room`, so each room has exact counts of its own (tally:pcm:ROOM).
  c.tally_group = "room";
  for (const auto& r : rows->get_array()) {
    const auto* id = r.is_object() ? r.get_object().if_contains("id") : nullptr;
    if (!id || !id->is_string() || !valid_field(id->get_string()))
      throw fail("every row needs an \"id\" of 1-64 characters of A-Za-z0-9_.- (not starting with '_', not \"id\")");
    if (!c.tally.emplace(std::string(id->get_string()), level_ids).second)
      throw fail(fmt::format("row id \"{}\" appears twice", std::string_view(id->get_string())));
  }
  if (c.tally.contains(c.tally_group)) throw fail(fmt::format("row id \"{}\" is reserved for rooms", c.tally_group));
  return c;
}

}  // namespace rtsync::config
