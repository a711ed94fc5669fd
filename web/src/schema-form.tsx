/**
 * A form generated from a JSON Schema: the schema of one `devices:` config entry, so the form asks for
 * exactly what the config file takes. Scalars, enums, booleans and lists of scalars get their own inputs;
 * anything richer (capability objects, driver sections) is edited as JSON in a text area beside them.
 * The server validates again and its errors (with their paths) are shown next to the form.
 */
import { useState } from 'preact/hooks';
import { isRecord } from './format.js';
import type { JsonSchema } from './types.js';

type Value = Record<string, unknown>;

function typeOf(schema: JsonSchema): string | undefined {
  return Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
}

/** The `enum` of a schema or of a schema whose anyOf/oneOf lists only constants. */
function choices(schema: JsonSchema): unknown[] | null {
  if (schema.enum) return schema.enum;
  const options = schema.anyOf ?? schema.oneOf;
  if (options?.every((o) => 'const' in o)) return options.map((o) => o.const);
  return null;
}

function isScalarList(schema: JsonSchema): boolean {
  if (typeOf(schema) !== 'array' || !schema.items) return false;
  const item = typeOf(schema.items);
  return (item === 'string' || item === 'number' || item === 'integer') && !schema.items.properties;
}

function label(name: string, schema: JsonSchema): string {
  return schema.title ?? name.replace(/_/g, ' ');
}

export function SchemaForm(props: {
  schema: JsonSchema;
  initial: Value;
  /** Keys shown but not editable (e.g. a device's id when editing). */
  readOnly?: string[];
  /** Keys that never appear (set by the app, e.g. demo). */
  hidden?: string[];
  submitLabel: string;
  busy: boolean;
  onSubmit(value: Value): void;
}) {
  const { schema } = props;
  const [value, setValue] = useState<Value>(props.initial);
  const [jsonDrafts, setJsonDrafts] = useState<Record<string, string>>({});
  const [localError, setLocalError] = useState<string | null>(null);
  const properties = Object.entries(schema.properties ?? {}).filter(([name]) => !props.hidden?.includes(name));
  const required = new Set(schema.required ?? []);
  const set = (name: string, v: unknown) => {
    const next = { ...value };
    if (v === undefined || v === '') delete next[name];
    else next[name] = v;
    setValue(next);
  };

  const submit = (event: Event) => {
    event.preventDefault();
    const out: Value = { ...value };
    for (const [name, text] of Object.entries(jsonDrafts)) {
      if (text.trim() === '') {
        delete out[name];
        continue;
      }
      try {
        out[name] = JSON.parse(text);
      } catch {
        setLocalError(`${name}: not valid JSON`);
        return;
      }
    }
    setLocalError(null);
    props.onSubmit(out);
  };

  // Commonly used keys first, then the rest in schema order.
  const order = ['id', 'name', 'driver', 'capabilities', 'area', 'aliases'];
  const sorted = [...properties].sort(([a], [b]) => (order.includes(a) ? order.indexOf(a) : 99) - (order.includes(b) ? order.indexOf(b) : 99));

  return (
    <form class="schema-form" onSubmit={submit} noValidate>
      {sorted.map(([name, field]) => {
        const id = `field-${name}`;
        const readOnly = props.readOnly?.includes(name) ?? false;
        const help = field.description ? <small class="muted">{field.description}</small> : null;
        const title = (
          <span>
            {label(name, field)}
            {required.has(name) ? <span aria-hidden="true"> *</span> : null}
          </span>
        );
        const enumValues = choices(field);
        const type = typeOf(field);
        const current = value[name];
        if (enumValues) {
          return (
            <label for={id} class="field">
              {title}
              <select id={id} name={name} disabled={readOnly} required={required.has(name)} value={current === undefined ? '' : String(current)} onChange={(e) => {
                const raw = (e.target as HTMLSelectElement).value;
                set(name, raw === '' ? undefined : enumValues.find((c) => String(c) === raw));
              }}>
                <option value="">{required.has(name) ? 'choose…' : '(default)'}</option>
                {enumValues.map((c) => (
                  <option value={String(c)}>{String(c)}</option>
                ))}
              </select>
              {help}
            </label>
          );
        }
        if (type === 'boolean') {
          return (
            <label class="field checkbox">
              <input type="checkbox" name={name} disabled={readOnly} checked={current === true} onChange={(e) => set(name, (e.target as HTMLInputElement).checked)} />
              {title}
              {help}
            </label>
          );
        }
        if (type === 'string' || type === 'number' || type === 'integer') {
          return (
            <label for={id} class="field">
              {title}
              <input
                id={id}
                name={name}
                // The union of input types is more than preact's typings follow; both are plain inputs.
                type={(type === 'string' ? 'text' : 'number') as 'text'}
                readOnly={readOnly}
                required={required.has(name)}
                value={current === undefined ? '' : String(current)}
                onInput={(e) => {
                  const raw = (e.target as HTMLInputElement).value;
                  set(name, type === 'string' || raw === '' ? raw : Number(raw));
                }}
              />
              {help}
            </label>
          );
        }
        if (isScalarList(field)) {
          const list = Array.isArray(current) ? current.join(', ') : '';
          return (
            <label for={id} class="field">
              {title}
              <input
                id={id}
                name={name}
                type="text"
                value={list}
                readOnly={readOnly}
                onInput={(e) => {
                  const items = (e.target as HTMLInputElement).value.split(',').map((s) => s.trim()).filter(Boolean);
                  set(name, items.length ? items : undefined);
                }}
              />
              <small class="muted">Comma-separated. {field.description ?? ''}</small>
            </label>
          );
        }
        const draft = jsonDrafts[name] ?? (current === undefined ? '' : JSON.stringify(current));
        return (
          <label for={id} class="field">
            {title}
            <textarea
              id={id}
              name={name}
              rows={name === 'capabilities' ? 3 : 2}
              spellcheck={false}
              readOnly={readOnly}
              value={draft}
              onInput={(e) => setJsonDrafts({ ...jsonDrafts, [name]: (e.target as HTMLTextAreaElement).value })}
            />
            <small class="muted">JSON{isRecord(field) && field.description ? ` — ${field.description}` : ''}</small>
          </label>
        );
      })}
      {localError ? (
        <p class="error" role="alert">
          {localError}
        </p>
      ) : null}
      <div class="actions">
        <button type="submit" class="primary" disabled={props.busy}>
          {props.busy ? 'Saving…' : props.submitLabel}
        </button>
      </div>
    </form>
  );
}
