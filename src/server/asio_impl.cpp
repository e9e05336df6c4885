// The single translation unit that compiles Asio and Beast (BOOST_*_SEPARATE_COMPILATION is set for the
// whole server library), so no other file pays for their implementation.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
