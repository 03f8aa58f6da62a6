/**
 * Opens URLs in the user's browser with `open` (which honours $BROWSER on Linux). It fails silently
 * where no browser exists, so callers always show the URL too.
 */
import type { Logger } from './log.js';

export type OpenBrowser = (url: string) => Promise<boolean>;

export function systemBrowser(log: Logger): OpenBrowser {
  return async (url) => {
    try {
      const { default: open } = await import('open');
      await open(url);
      log.debug({ host: new URL(url).host }, 'opened the browser');
      return true;
    } catch (error) {
      log.warn({ err: { message: (error as Error).message } }, 'could not open a browser; the URL is shown to the user instead');
      return false;
    }
  };
}
