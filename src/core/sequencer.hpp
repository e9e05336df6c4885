// Puts one channel's durable publications in offset order when they may arrive out of order or not at
// all: in a cluster (docs/scaling.md) other nodes' publications come through the broker, which may
// reorder them or lose one (a Redis blip). The sequencer decides, for each arrival, whether the hub
// appends it, drops it, or holds it past a hole until a fill (a read of the store) brings what is
// missing; it keeps the held publications, whether a fill is under way, and who waits for that fill.
//
// Pure logic: no lock, no I/O, no hub. It lives in its channel (core::Channel) and is used under the
// channel's lock; the hub runs the fills and appends what the sequencer hands back (core/hub.hpp).
// Without gap filling (one node) only place() is used: a hole stays a hole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "core/publication.hpp"

namespace rtsync::core {

class Sequencer {
 public:
  // What to do with a publication that arrived at a ready channel.
  enum class Step : std::uint8_t {
    drop,       // the channel has it already (from a snapshot, a fill or an earlier arrival)
    append,     // the next offset: append it, then whatever drain() hands back
    open_hole,  // past a hole that nothing will fill: drop the history before it, then append it
    hold,       // past a hole: held until a fill brings the missing ones (one is under way)
    fill,       // held too, and no fill is under way: the caller starts one (marked started already)
  };

  // Publications held past a hole while the store fills it. A flood past this (a fill that takes long
  // under heavy traffic) drops the newest; the next fill reads them from the store.
  static constexpr std::size_t max_held = 10000;

  // Where a publication at `offset` goes after `last`, the channel's last offset, when holes are not
  // filled: drop, append or open_hole. Also how a fill's publications are applied.
  static Step place(std::uint64_t offset, std::uint64_t last);
  // With gap filling: like place(), but a publication past a hole is held (hold or fill) instead.
  Step arrive(PublicationPtr pub, std::uint64_t last);
  // Holds a publication that arrived while the channel loads: the snapshot may be older than it.
  void hold(PublicationPtr pub);
  // Takes, in order, the held publications that follow on from `last`, and forgets those at or before
  // it; the caller appends what it gets.
  std::vector<PublicationPtr> drain(std::uint64_t last);
  // Forgets every held publication (the load failed; the next one reads them from the store).
  void clear() { held_.clear(); }

  // Fills. begin_fill() marks one started unless one is under way (returns whether it did); `waiter`
  // in wait_fill() runs after the fill, and wait_fill() returns true when the caller must start it.
  // end_fill() marks it done and hands back its waiters, for the caller to run with its lock released.
  bool begin_fill();
  bool wait_fill(std::function<void(bool ok)> waiter);
  std::vector<std::function<void(bool ok)>> end_fill();
  bool filling() const { return filling_; }

  // Nothing held and no fill under way: the channel may be unloaded.
  bool idle() const { return !filling_ && held_.empty(); }
  // How many publications are held.
  std::size_t held() const { return held_.size(); }

 private:
  std::map<std::uint64_t, PublicationPtr> held_;  // by offset
  bool filling_ = false;
  std::vector<std::function<void(bool)>> fill_waiting_;
};

}  // namespace rtsync::core
