// Offset order for publications that may arrive out of order. See sequencer.hpp.
#include "core/sequencer.hpp"

#include <utility>

namespace rtsync::core {

Sequencer::Step Sequencer::place(std::uint64_t offset, std::uint64_t last) {
  if (offset <= last) return Step::drop;
  return offset == last + 1 ? Step::append : Step::open_hole;
}

Sequencer::Step Sequencer::arrive(PublicationPtr pub, std::uint64_t last) {
  const Step step = place(pub->offset, last);
  if (step != Step::open_hole) return step;
  hold(std::move(pub));
  return begin_fill() ? Step::fill : Step::hold;
}

void Sequencer::hold(PublicationPtr pub) {
  if (held_.size() < max_held) held_.emplace(pub->offset, std::move(pub));
}

std::vector<PublicationPtr> Sequencer::drain(std::uint64_t last) {
  std::vector<PublicationPtr> out;
  while (!held_.empty()) {
    auto it = held_.begin();
    if (it->first > last + 1) break;
    if (it->first == last + 1) {
      out.push_back(std::move(it->second));
      ++last;
    }
    held_.erase(it);
  }
  return out;
}

bool Sequencer::begin_fill() {
  if (filling_) return false;
  filling_ = true;
  return true;
}

bool Sequencer::wait_fill(std::function<void(bool)> waiter) {
  fill_waiting_.push_back(std::move(waiter));
  return begin_fill();
}

std::vector<std::function<void(bool)>> Sequencer::end_fill() {
  filling_ = false;
  return std::exchange(fill_waiting_, {});
}

}  // namespace rtsync::core
