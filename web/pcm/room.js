// Room names, shared by the matrix and the presenter view: `?room=NAME` names a group of the `pcm`
// tally (docs/protocol.md, *Grouped tallies*), whose rule this is.

const ROOM_NAME = /^[A-Za-z0-9_.@-]{1,32}$/;
export const ROOM_RULE = 'a room name is 1–32 letters, digits and _ . @ -';

export const validRoom = (name) => ROOM_NAME.test(name);

// The page's room: `{room}` (null outside one), or `{error}` for a name the server would refuse.
export function roomOf(search) {
  const room = new URLSearchParams(search).get('room');
  if (room == null || room === '') return { room: null };
  return validRoom(room) ? { room } : { error: `“${room}” is not a room name: ${ROOM_RULE}.` };
}

export const roomUrl = (origin, room) => `${origin}/?room=${encodeURIComponent(room)}`;
