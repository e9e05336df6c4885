// Per-namespace channel behaviour: the [channels] table and each [namespaces.NAME] table of the config.
#pragma once

#include <cstddef>

namespace rtsync::core {

struct NamespaceOptions {
  std::size_t history_size = 1000;  // publications kept per channel; 0 keeps none (recovery then fails)
  // ... and at most this many bytes of them (core::payload_bytes), the newest; older ones are trimmed
  std::size_t history_bytes = 4 * 1024 * 1024;
  bool durable = true;              // history survives a restart; a pub ack means committed
  bool client_publish = true;       // clients may publish (server-owned namespaces say false)
  bool presence = true;             // track members and allow join/leave pushes
  bool anonymous = true;            // false: sub and pub need a token
};

}  // namespace rtsync::core
