// Per-peer protocol adapters. See peers.hpp.
#include "peers.hpp"

#include <cstdio>
#include <stdexcept>

namespace bench {

Peer::Peer(const std::string& proto, std::string path_override, std::string pubnub_key)
    : path_(std::move(path_override)), key_(std::move(pubnub_key)) {
  if (proto == "rtsync") proto_ = Proto::rtsync;
  else if (proto == "ws") proto_ = Proto::ws;
  else if (proto == "uws") proto_ = Proto::uws;
  else if (proto == "socketio") proto_ = Proto::socketio;
  else if (proto == "nchan") proto_ = Proto::nchan;
  else if (proto == "redis") proto_ = Proto::redis;
  else if (proto == "pubnub") proto_ = Proto::pubnub;
  else throw std::invalid_argument("unknown --proto " + proto);
}

Framing Peer::sub_framing() const {
  if (proto_ == Proto::redis) return Framing::resp;
  if (proto_ == Proto::pubnub) return Framing::http;
  return Framing::websocket;
}

Framing Peer::pub_framing() const { return proto_ == Proto::redis ? Framing::resp : Framing::websocket; }

std::string Peer::sub_path(const std::string& ch) const {
  switch (proto_) {
    case Proto::rtsync: return path_.empty() ? "/v1/ws" : path_;
    case Proto::ws:
    case Proto::uws: return path_.empty() ? "/" : path_;
    case Proto::socketio: return "/socket.io/?EIO=4&transport=websocket";
    case Proto::nchan: return "/sub/" + ch;
    default: return "/";
  }
}

std::string Peer::pub_path(const std::string& ch) const {
  if (proto_ == Proto::nchan) return "/pub/" + ch;
  if (proto_ == Proto::pubnub) return path_.empty() ? "/v1/ws" : path_;
  return sub_path(ch);
}

std::string Peer::pubnub_get(const std::string& ch, const std::string& cursor) const {
  std::string r = "GET /v2/subscribe/" + key_ + "/" + ch + "/0?uuid=bench&pnsdk=rtsync-bench";
  if (!cursor.empty()) r += "&tt=" + cursor + "&tr=1";
  r += " HTTP/1.1\r\nHost: bench\r\n\r\n";
  return r;
}

bool Peer::sub_open(Connection& c, const std::string& ch, SubState& s) const {
  switch (proto_) {
    case Proto::rtsync: c.send_text("{\"id\":1,\"op\":\"sub\",\"ch\":\"" + ch + "\"}"); return false;
    case Proto::ws:
    case Proto::uws: c.send_text("sub " + ch); return false;
    case Proto::socketio: c.send_text("40"); return false;
    case Proto::nchan: s.acked = true; return true;
    case Proto::redis: c.send_text("SUBSCRIBE " + ch + "\r\n"); return false;
    case Proto::pubnub: c.send_text(pubnub_get(ch, "")); return false;
  }
  return false;
}

Event Peer::sub_line(Connection& c, const std::string& ch, SubState& s, std::string_view line) const {
  auto ack = [&] {
    if (s.acked) return Event::none;
    s.acked = true;
    return Event::ack;
  };
  switch (proto_) {
    case Proto::rtsync:
      if (line.starts_with("{\"op\":\"msg\"")) return Event::data;
      if (line.starts_with("{\"id\":1,\"ok\"")) return ack();
      if (line.starts_with("{\"id\":1,\"error\"")) std::fprintf(stderr, "sub error: %.*s\n", int(line.size()), line.data());
      return Event::none;
    case Proto::ws:
    case Proto::uws:
      if (line == "ok") return ack();
      return line.starts_with("{") ? Event::data : Event::none;
    case Proto::socketio:
      if (line.starts_with("42[\"m\"")) return Event::data;
      if (line == "2") c.send_text("3");
      else if (line.starts_with("40")) c.send_text("42[\"sub\",\"" + ch + "\"]");
      else if (line.starts_with("42[\"ok\"")) return ack();
      return Event::none;
    case Proto::nchan: return line.starts_with("{") ? Event::data : Event::none;
    case Proto::redis:
      if (line == "+subscribed") return ack();
      return line.starts_with("{") ? Event::data : Event::none;
    case Proto::pubnub: {
      // {"t":{"t":"TT","r":1},"m":[…]}: keep the cursor and poll again at once.
      auto p = line.find("{\"t\":{\"t\":\"");
      if (p == std::string_view::npos) {
        std::fprintf(stderr, "pubnub: unexpected body %.*s\n", int(std::min<std::size_t>(line.size(), 200)), line.data());
        c.close();
        return Event::none;
      }
      p += 11;
      auto e = line.find('"', p);
      s.cursor.assign(line.substr(p, e - p));
      c.send_text(pubnub_get(ch, s.cursor));
      if (!s.acked) return ack();
      return Event::data;
    }
  }
  return Event::none;
}

bool Peer::pub_open(Connection& c) const {
  if (proto_ == Proto::socketio) {
    c.send_text("40");
    return false;
  }
  return true;
}

bool Peer::pub_line(Connection& c, std::string_view line) const {
  switch (proto_) {
    case Proto::socketio:
      if (line == "2") c.send_text("3");
      return line.starts_with("40");
    case Proto::rtsync:
    case Proto::pubnub:
      if (line.starts_with("{\"id\":") && line.find("\"error\"") != std::string_view::npos)
        std::fprintf(stderr, "publish error: %.*s\n", int(line.size()), line.data());
      return false;
    default: return false;
  }
}

void Peer::append_pub(std::string& out, const std::string& ch, std::string_view payload, std::uint64_t id) const {
  switch (proto_) {
    case Proto::rtsync:
    case Proto::pubnub:
      out += "{\"id\":";
      out += std::to_string(id);
      out += ",\"op\":\"pub\",\"ch\":\"";
      out += ch;
      out += "\",\"data\":";
      out += payload;
      out += '}';
      return;
    case Proto::ws:
    case Proto::uws:
      out += "pub ";
      out += ch;
      out += ' ';
      out += payload;
      return;
    case Proto::socketio:
      out += "42[\"pub\",\"";
      out += ch;
      out += "\",";
      out += payload;
      out += ']';
      return;
    case Proto::nchan: out += payload; return;
    case Proto::redis:
      out += "*3\r\n$7\r\nPUBLISH\r\n$";
      out += std::to_string(ch.size());
      out += "\r\n";
      out += ch;
      out += "\r\n$";
      out += std::to_string(payload.size());
      out += "\r\n";
      out += payload;
      out += "\r\n";
      return;
  }
}

bool Peer::idle_open(Connection& c) const {
  switch (proto_) {
    case Proto::redis: c.send_text("PING\r\n"); return false;
    case Proto::socketio: c.send_text("40"); return false;
    case Proto::rtsync: return false;  // waits for hello
    default: return true;
  }
}

bool Peer::idle_line(Connection& c, std::string_view line) const {
  switch (proto_) {
    case Proto::rtsync: return line.starts_with("{\"op\":\"hello\"");
    case Proto::redis: return line == "+PONG";
    case Proto::socketio:
      if (line == "2") c.send_text("3");
      return line.starts_with("40");
    default: return false;
  }
}

}  // namespace bench
