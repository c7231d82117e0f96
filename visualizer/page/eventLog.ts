/**
 * The scrolling log of the last events: stages entered, controls returned, guards fired
 * (from `events` messages) and the page's own notes (connected, paused, done). Capped, so a
 * long run never grows the page; appended in one batch per frame.
 */
import type { LogItem } from './protocol.js';

export const LOG_CAP = 300;

export class EventLog {
  private pending: HTMLElement[] = [];

  constructor(private readonly list: HTMLElement) {}

  add(item: LogItem) {
    const li = document.createElement('li');
    li.className = `log-${item.kind}`;
    const where = [item.epoch !== undefined ? `ep ${item.epoch}` : '', item.iteration !== undefined ? `it ${item.iteration}` : '']
      .filter(Boolean)
      .join(' ');
    const what = item.kind === 'stage' ? (item.path ?? item.stage ?? '') : [item.stage ?? item.path ?? '', item.detail ?? ''].filter(Boolean).join(': ');
    li.textContent = `${where.padEnd(13)} ${item.kind.padEnd(7)} ${what}`;
    this.pending.push(li);
    // Between frames, keep only what the cap would keep anyway.
    if (this.pending.length > LOG_CAP) this.pending.splice(0, this.pending.length - LOG_CAP);
  }

  note(kind: string, text: string) {
    this.add({ kind, detail: text });
  }

  flush() {
    if (!this.pending.length) return;
    const atBottom = this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - 4;
    const fragment = document.createDocumentFragment();
    for (const li of this.pending) fragment.append(li);
    this.pending = [];
    this.list.append(fragment);
    while (this.list.childElementCount > LOG_CAP) this.list.firstElementChild!.remove();
    // Follow the tail unless the reader has scrolled up to read.
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }
}
