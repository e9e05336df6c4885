// The matrix definition (rows, levels, the text of every cell), shared by the matrix and the presenter
// view; the server declares the `pcm` collection from the same file.
export async function loadMatrix() {
  const res = await fetch('/pcm/matrix.json', { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`the matrix could not be loaded (HTTP ${res.status})`);
  return res.json();
}
