// PubNub history: history v2, fetch messages v3 and message counts, read from what the hub keeps (durable
// channels loaded from the store first). Parameters and answer shapes follow ../shared/PUBNUB.md.
#include <boost/json.hpp>

#include <algorithm>
#include <string>

#include "common/json_text.hpp"
#include "server/pubnub_detail.hpp"
#include "service/pubnub_actions.hpp"

namespace rtsync::server::pubnub {

using common::append_int;
using common::append_json_string;

std::optional<service::TimetokenQuery> timetoken_range(const Call& c) {
  service::TimetokenQuery q;
  std::optional<std::uint64_t> start, end;
  if (const auto* s = c.param("start"); s && !s->empty()) {
    start = parse_uint(*s);
    if (!start) return std::nullopt;
  }
  if (const auto* e = c.param("end"); e && !e->empty()) {
    end = parse_uint(*e);
    if (!end) return std::nullopt;
  }
  if (start && end && *start <= *end) {
    q.after = *start;
    q.until = *end;
  } else {
    if (start) q.until = *start > 0 ? *start - 1 : 0;
    if (end) q.after = *end > 0 ? *end - 1 : 0;
  }
  return q;
}

namespace {

std::size_t count_param(const Call& c, std::string_view key, std::size_t fallback, std::size_t max) {
  const auto* v = c.param(key);
  if (!v) return fallback;
  auto n = parse_uint(*v);
  if (!n || *n == 0) return fallback;
  return static_cast<std::size_t>(std::min<std::uint64_t>(*n, max));
}

std::optional<std::string> single_channel_name(Call& c, std::size_t at) {
  auto names = name_list(c.seg[at]);
  if (!names || names->size() != 1) return std::nullopt;
  return std::move(names->front());
}

// GET /v2/history/sub-key/{sub}/channel/{ch}: [[{message,timetoken[,meta]}…], first tt, last tt].
}  // namespace

void history_v2(Call& c) {
  auto name = single_channel_name(c, 5);
  if (!name) return c.respond(error(c.req, http::status::bad_request, "Invalid channel", "History"));
  auto r = resolve_for_reading(c, {*name}, "History");
  if (r.failure) return c.respond(std::move(*r.failure));
  auto q = timetoken_range(c);
  if (!q) return c.respond(error(c.req, http::status::bad_request, "Invalid Arguments: start/end", "History"));
  q->limit = count_param(c, "count", 100, 100);
  q->oldest = c.flag("reverse");
  const bool with_token = c.flag("include_token");
  const bool string_tt = c.flag("string_message_token") || c.flag("stringtoken");
  const bool with_meta = c.flag("include_meta");
  core::ChannelRef ch = r.channels.front();
  when_all_ready(c, r.channels, [&ctx = c.ctx, &req = c.req, respond = c.respond, ch, q = *q, caller = c.caller(),
                                 with_token, string_tt, with_meta](bool ok) {
    if (!ok) return respond(error(req, http::status::service_unavailable, "the store is unavailable", "History"));
    auto pubs = ctx.channels.history_tt(*ch, q, caller);
    auto tt = [&](std::string& out, std::uint64_t v) {
      if (string_tt) append_tt(out, v);
      else append_int(out, v);
    };
    std::string body = "[[";
    for (std::size_t i = 0; i < pubs.size(); ++i) {
      const auto& p = *pubs[i];
      if (i) body += ',';
      if (!with_token && !with_meta) {
        body += p.data;
        continue;
      }
      body += "{\"message\":";
      body += p.data;
      if (with_token) {
        body += ",\"timetoken\":";
        tt(body, p.tt);
      }
      if (with_meta && !p.meta.empty()) {
        body += ",\"meta\":";
        body += p.meta;
      }
      body += '}';
    }
    body += "],";
    tt(body, pubs.empty() ? 0 : pubs.front()->tt);
    body += ',';
    tt(body, pubs.empty() ? 0 : pubs.back()->tt);
    body += ']';
    respond(reply(req, http::status::ok, std::move(body)));
  });
}

// GET /v3/history[-with-actions]/sub-key/{sub}/channel/{ch1,ch2}: the newest `max` of each channel (the
// oldest from `end` on when only `end` is given), each ascending.
void fetch_messages(Call& c, bool with_actions) {
  with_actions = with_actions || c.flag("include_message_actions");
  auto names = name_list(c.seg[5]);
  if (!names || names->empty()) return c.respond(history_error(c.req, http::status::bad_request, "Invalid Arguments: channels"));
  if (with_actions && names->size() > 1)
    return c.respond(history_error(c.req, http::status::bad_request, "Only one channel is supported with actions"));
  auto r = resolve_for_reading(c, *names, "History");
  if (r.failure) return c.respond(std::move(*r.failure));
  auto q = timetoken_range(c);
  if (!q) return c.respond(history_error(c.req, http::status::bad_request, "Invalid Arguments: start/end"));
  const bool single = r.channels.size() == 1;
  q->limit = count_param(c, "max", single ? 100 : 25, single && !with_actions ? 100 : 25);
  q->oldest = !c.param("start") && c.param("end");
  const bool with_uuid = !c.param("include_uuid") || c.flag("include_uuid");
  const bool with_type = !c.param("include_message_type") || c.flag("include_message_type");
  const bool with_meta = c.flag("include_meta");
  const bool with_ctype = c.flag("include_custom_message_type");
  when_all_ready(c, r.channels, [&ctx = c.ctx, &req = c.req, respond = c.respond, post = c.post, channels = r.channels,
                                 q = *q, caller = c.caller(), with_uuid, with_type, with_meta, with_ctype,
                                 with_actions](bool ok) {
    if (!ok) return respond(history_error(req, http::status::service_unavailable, "the store is unavailable"));
    std::vector<std::vector<core::PublicationPtr>> pages;
    for (const auto& ch : channels) pages.push_back(ctx.channels.history_tt(*ch, q, caller));
    auto answer = [&req, respond, channels, pages, with_uuid, with_type, with_meta, with_ctype,
                   with_actions](const std::vector<store::MessageAction>& actions) {
      std::string body = "{\"status\":200,\"error\":false,\"error_message\":\"\",\"channels\":{";
      bool first_channel = true;
      for (std::size_t n = 0; n < channels.size(); ++n) {
        const auto& ch = channels[n];
        const auto& pubs = pages[n];
        if (pubs.empty()) continue;
        if (!first_channel) body += ',';
        first_channel = false;
        append_json_string(body, ch->name());
        body += ":[";
        for (std::size_t i = 0; i < pubs.size(); ++i) {
          const auto& p = *pubs[i];
          if (i) body += ',';
          body += "{\"message\":";
          body += p.data;
          body += ",\"timetoken\":";
          append_tt(body, p.tt);
          if (with_uuid) {
            body += ",\"uuid\":";
            append_json_string(body, p.uuid.empty() ? p.from : p.uuid);
          }
          if (with_type) {
            body += ",\"message_type\":";
            body += p.pn_event == core::pn_file_event ? "4" : "null";
          }
          if (with_meta) {
            body += ",\"meta\":";
            body += p.meta.empty() ? std::string("\"\"") : p.meta;
          }
          if (with_ctype && !p.ctype.empty()) {
            body += ",\"custom_message_type\":";
            append_json_string(body, p.ctype);
          }
          if (with_actions) {
            body += ",\"actions\":";
            service::append_message_actions(body, actions, p.tt);
          }
          body += '}';
        }
        body += ']';
      }
      body += "}}";
      respond(reply(req, http::status::ok, std::move(body)));
    };
    // With actions there is one channel: its page's actions come from the store.
    if (!with_actions || pages.front().empty()) return answer({});
    read_page_actions(ctx, post, channels.front()->name(), pages.front().front()->tt, pages.front().back()->tt,
                      [&req, respond, answer](std::optional<std::vector<store::MessageAction>> actions) {
                        if (!actions)
                          return respond(history_error(req, http::status::service_unavailable, "the store is unavailable"));
                        answer(*actions);
                      });
  });
}

// GET /v3/history/sub-key/{sub}/message-counts/{ch1,ch2}?timetoken=T | channelsTimetoken=T1,T2
void message_counts(Call& c) {
  auto names = name_list(c.seg[5]);
  if (!names || names->empty()) return c.respond(history_error(c.req, http::status::bad_request, "Invalid Arguments: channels"));
  std::vector<std::uint64_t> after;
  if (const auto* t = c.param("timetoken"); t && !t->empty()) {
    auto v = parse_uint(*t);
    if (!v) return c.respond(history_error(c.req, http::status::bad_request, "Invalid Arguments: timetoken"));
    after.assign(names->size(), *v);
  } else if (const auto* ts = c.param("channelsTimetoken"); ts && !ts->empty()) {
    for (auto part : split(*ts, ',')) {
      auto v = parse_uint(part);
      if (!v) return c.respond(history_error(c.req, http::status::bad_request, "Invalid Arguments: channelsTimetoken"));
      after.push_back(*v);
    }
    if (after.size() != names->size())
      return c.respond(history_error(c.req, http::status::bad_request,
                                     "Invalid Arguments: channelsTimetoken must have one timetoken per channel"));
  } else {
    return c.respond(history_error(c.req, http::status::bad_request, "Invalid Arguments: timetoken"));
  }
  // Resolved one by one (no duplicates dropped): the timetokens pair with the names in order.
  std::vector<core::ChannelRef> channels;
  for (const auto& name : *names) {
    auto r = resolve_for_reading(c, {name}, "History");
    if (r.failure) return c.respond(std::move(*r.failure));
    channels.push_back(r.channels.front());
  }
  when_all_ready(c, channels, [&ctx = c.ctx, &req = c.req, respond = c.respond, channels, after,
                               caller = c.caller()](bool ok) {
    if (!ok) return respond(history_error(req, http::status::service_unavailable, "the store is unavailable"));
    std::string body = "{\"status\":200,\"error\":false,\"error_message\":\"\",\"channels\":{";
    for (std::size_t i = 0; i < channels.size(); ++i) {
      if (i) body += ',';
      append_json_string(body, channels[i]->name());
      body += ':';
      append_int(body, std::min<std::size_t>(ctx.channels.count_after(*channels[i], after[i], caller), 10000));
    }
    body += "},\"more\":{}}";
    respond(reply(req, http::status::ok, std::move(body)));
  });
}

}  // namespace rtsync::server::pubnub
