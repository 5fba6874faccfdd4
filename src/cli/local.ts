import { ImageStore } from '../images/image-store.js';
import { Paths, resolveHome } from '../util/paths.js';

/** What commands that work without a daemon need: the state directory and the image store. */
export function localContext(home?: string): { paths: Paths; images: ImageStore } {
  const paths = new Paths(resolveHome(home));
  return { paths, images: new ImageStore(paths) };
}
