/**
 * "Ask the box": the chat over the WebSocket at /api/chat/ws (the same agent as MQTT and the OpenAI API).
 * A model reply streams in as token frames; a fast-path reply arrives whole. The device cards above show
 * what the actions did, live.
 */
import { useEffect, useRef, useState } from 'preact/hooks';

interface Line {
  id: number;
  kind: 'me' | 'reply' | 'error';
  text: string;
  actions?: number;
}

type Frame =
  | { type: 'token'; text: string; in_reply_to?: number }
  | { type: 'reply'; text: string; actions?: unknown[]; in_reply_to?: number }
  | { type: 'error'; error: { code: string; message: string }; in_reply_to?: number };

const KEEP = 50;

export function ChatBox() {
  const [lines, setLines] = useState<Line[]>([]);
  const [text, setText] = useState('');
  const [open, setOpen] = useState(false);
  const socket = useRef<WebSocket | null>(null);
  const next = useRef(1);
  const streaming = useRef<number | null>(null);

  useEffect(() => {
    let closed = false;
    let retry: number | undefined;
    const connect = () => {
      const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/chat/ws`);
      socket.current = ws;
      ws.addEventListener('open', () => setOpen(true));
      ws.addEventListener('close', () => {
        setOpen(false);
        if (!closed) retry = window.setTimeout(connect, 3000);
      });
      ws.addEventListener('message', (event) => {
        let frame: Frame;
        try {
          frame = JSON.parse(String(event.data)) as Frame;
        } catch {
          return;
        }
        setLines((old) => {
          const out = [...old];
          if (frame.type === 'token') {
            const current = streaming.current === null ? undefined : out.find((l) => l.id === streaming.current);
            if (current) current.text += frame.text;
            else {
              streaming.current = next.current++;
              out.push({ id: streaming.current, kind: 'reply', text: frame.text });
            }
          } else {
            const current = streaming.current === null ? undefined : out.find((l) => l.id === streaming.current);
            streaming.current = null;
            const line: Line =
              frame.type === 'reply'
                ? { id: current?.id ?? next.current++, kind: 'reply', text: frame.text, actions: frame.actions?.length ?? 0 }
                : { id: current?.id ?? next.current++, kind: 'error', text: `${frame.error.code}: ${frame.error.message}` };
            if (current) out.splice(out.indexOf(current), 1, line);
            else out.push(line);
          }
          return out.slice(-KEEP);
        });
      });
    };
    connect();
    return () => {
      closed = true;
      window.clearTimeout(retry);
      socket.current?.close();
    };
  }, []);

  const send = (event: Event) => {
    event.preventDefault();
    const message = text.trim();
    if (!message || socket.current?.readyState !== WebSocket.OPEN) return;
    socket.current.send(JSON.stringify({ text: message }));
    setLines((old) => [...old, { id: next.current++, kind: 'me' as const, text: message }].slice(-KEEP));
    setText('');
  };

  return (
    <section class="card chat" id="chat" aria-labelledby="chat-title">
      <h2 id="chat-title">Ask the box</h2>
      <ul class="chat-log" id="chat-log" aria-live="polite">
        {lines.map((line) => (
          <li class={`chat-${line.kind}`}>
            <span class="chat-text">{line.text}</span>
            {line.actions ? <span class="muted small"> · {line.actions} action{line.actions === 1 ? '' : 's'}</span> : null}
          </li>
        ))}
      </ul>
      <form class="chat-form" onSubmit={send}>
        <label class="sr-only" for="chat-input">
          Message
        </label>
        <input id="chat-input" name="text" autoComplete="off" maxLength={1000} placeholder='e.g. "turn on the lamp"' value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
        <button type="submit" id="chat-send" class="primary" disabled={!open}>
          Send
        </button>
      </form>
    </section>
  );
}
