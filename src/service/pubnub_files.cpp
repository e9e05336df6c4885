// PubNub files on disk. See pubnub_files.hpp.
#include "service/pubnub_files.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>

#include "common/clock.hpp"
#include "common/random.hpp"
#include "protocol/websocket.hpp"

namespace rtsync::service {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::string sha256_hex(std::string_view s) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), digest, &n, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

bool valid_id(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Writes `bytes` to `path` durably: a temporary name, fsync, rename, fsync of the directory.
bool write_durably(const fs::path& path, std::string_view bytes) {
  const fs::path tmp = path.string() + ".part";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < bytes.size()) {
    const auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  std::error_code ec;
  if (!synced || (fs::rename(tmp, path, ec), ec)) return false;
  const int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  const bool ok = ::fsync(dir) == 0;
  ::close(dir);
  return ok;
}

std::string describe(const std::string& channel, const FileInfo& f) {
  json::object o{{"channel", channel}, {"id", f.id},   {"name", f.name},
                 {"size", f.size},     {"created", f.created}, {"mime", f.mime}};
  return json::serialize(o);
}

}  // namespace

bool valid_file_name(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == ".." || !protocol::ws::valid_utf8(name)) return false;
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f || c == '/' || c == '\\') return false;
  return true;
}

PubnubFiles::PubnubFiles(fs::path root, std::size_t max_size) : root_(std::move(root)), max_size_(max_size) {
  fs::create_directories(root_);
  load();
}

PubnubFiles::~PubnubFiles() { disk_.join(); }

fs::path PubnubFiles::dir_of(const std::string& channel) const { return root_ / sha256_hex(channel); }

// A file is kept when both its bytes and its description are there and agree; anything else is what a
// crash cut short (a .part, bytes with no description) and is removed.
void PubnubFiles::load() {
  std::size_t count = 0;
  for (const auto& dir : fs::directory_iterator(root_)) {
    if (!dir.is_directory()) continue;
    for (const auto& entry : fs::directory_iterator(dir.path())) {
      const auto path = entry.path();
      const auto file = path.filename().string();
      std::error_code ec;
      if (file.ends_with(".part")) {
        fs::remove(path, ec);
        continue;
      }
      if (!file.ends_with(".json")) {
        if (!fs::exists(path.string() + ".json")) fs::remove(path, ec);
        continue;
      }
      std::ifstream in(path);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      boost::system::error_code jec;
      auto v = json::parse(text, jec);
      const fs::path bytes = path.parent_path() / path.stem();
      const auto* o = v.if_object();
      if (jec || !o || !o->contains("channel") || !o->contains("id") || !fs::exists(bytes)) {
        spdlog::warn("files: removing {}: not a whole file", path.string());
        fs::remove(path, ec);
        fs::remove(bytes, ec);
        continue;
      }
      try {
        FileInfo f;
        const std::string channel(o->at("channel").as_string());
        f.id = std::string(o->at("id").as_string());
        f.name = std::string(o->at("name").as_string());
        f.size = o->at("size").to_number<std::uint64_t>();
        f.created = o->at("created").to_number<std::int64_t>();
        f.mime = std::string(o->at("mime").as_string());
        files_[channel].emplace(std::pair{f.created, f.id}, std::move(f));
        ++count;
      } catch (const std::exception& e) {
        spdlog::warn("files: skipping {}: {}", path.string(), e.what());
      }
    }
  }
  if (count > 0) spdlog::info("files: {} PubNub files under {}", count, root_.string());
}

std::string PubnubFiles::reserve(const std::string& channel, const std::string& name) {
  const auto now = std::chrono::steady_clock::now();
  std::string id = common::random_hex(16);
  std::lock_guard lock(mu_);
  std::erase_if(pending_, [&](const auto& kv) { return kv.second.deadline < now; });
  pending_.emplace(id, Pending{channel, name, now + kUploadWindow});
  return id;
}

void PubnubFiles::store(const std::string& channel, const std::string& id, std::string bytes, std::string mime,
                        const Post& post, std::function<void(bool)> done) {
  FileInfo f;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end() || it->second.channel != channel ||
        it->second.deadline < std::chrono::steady_clock::now()) {
      if (it != pending_.end()) pending_.erase(it);
      return post([done = std::move(done)] { done(false); });
    }
    f.name = std::move(it->second.name);
    pending_.erase(it);
  }
  f.id = id;
  f.size = bytes.size();
  f.mime = std::move(mime);
  boost::asio::post(disk_, [this, channel, f = std::move(f), bytes = std::move(bytes), post, done = std::move(done)]() mutable {
    const fs::path dir = dir_of(channel);
    std::error_code ec;
    fs::create_directories(dir, ec);
    f.created = common::now_ms();
    const bool ok = !ec && write_durably(dir / f.id, bytes) && write_durably(dir / (f.id + ".json"), describe(channel, f));
    if (ok) {
      std::lock_guard lock(mu_);
      files_[channel].emplace(std::pair{f.created, f.id}, f);
    } else {
      spdlog::error("files: could not write {} of {}", f.id, channel);
      fs::remove(dir / f.id, ec);
    }
    post([done = std::move(done), ok] { done(ok); });
  });
}

std::optional<FileInfo> PubnubFiles::find(const std::string& channel, std::string_view id, std::string_view name) const {
  std::lock_guard lock(mu_);
  auto ch = files_.find(channel);
  if (ch == files_.end()) return std::nullopt;
  for (const auto& [key, f] : ch->second)
    if (f.id == id && f.name == name) return f;
  return std::nullopt;
}

std::string PubnubFiles::next_page(const FileInfo& last) { return std::to_string(last.created) + "-" + last.id; }

std::vector<FileInfo> PubnubFiles::list(const std::string& channel, std::size_t limit, std::string_view next,
                                        bool& more) const {
  std::vector<FileInfo> out;
  more = false;
  std::lock_guard lock(mu_);
  auto ch = files_.find(channel);
  if (ch == files_.end()) return out;
  auto it = ch->second.begin();
  if (const auto dash = next.find('-'); dash != std::string_view::npos) {
    std::int64_t created = 0;
    std::istringstream(std::string(next.substr(0, dash))) >> created;
    it = ch->second.upper_bound({created, std::string(next.substr(dash + 1))});
  }
  for (; it != ch->second.end(); ++it) {
    if (out.size() == limit) {
      more = true;
      break;
    }
    out.push_back(it->second);
  }
  return out;
}

void PubnubFiles::read(const std::string& channel, const FileInfo& file, const Post& post,
                       std::function<void(std::optional<std::string>)> done) {
  boost::asio::post(disk_, [path = dir_of(channel) / file.id, post, done = std::move(done)]() mutable {
    std::optional<std::string> bytes;
    if (std::ifstream in(path, std::ios::binary); in) {
      std::ostringstream s;
      s << in.rdbuf();
      if (in.good() || in.eof()) bytes = std::move(s).str();
    }
    post([done = std::move(done), bytes = std::move(bytes)]() mutable { done(std::move(bytes)); });
  });
}

bool PubnubFiles::remove(const std::string& channel, std::string_view id, std::string_view name) {
  if (!valid_id(id)) return false;
  {
    std::lock_guard lock(mu_);
    auto ch = files_.find(channel);
    if (ch == files_.end()) return false;
    auto it = std::find_if(ch->second.begin(), ch->second.end(),
                           [&](const auto& kv) { return kv.second.id == id && kv.second.name == name; });
    if (it == ch->second.end()) return false;
    ch->second.erase(it);
  }
  boost::asio::post(disk_, [dir = dir_of(channel), id = std::string(id)] {
    std::error_code ec;
    // The description first: a crash between the two leaves bytes with none, removed at the next start.
    fs::remove(dir / (id + ".json"), ec);
    fs::remove(dir / id, ec);
  });
  return true;
}

}  // namespace rtsync::service
