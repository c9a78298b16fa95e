/** The counters the admin listener reads from every component, and how each maps to a Prometheus family. */

/** Counter fields of `ComponentStats` (read as `stats[field]`, so a rename in core fails the build), plus `dropped` (every reason summed). */
export const COUNTER_FIELDS_ADMIN = ['packets', 'bytes', 'received', 'parsed', 'bad', 'sent', 'failed', 'dropped'] as const;

/** One of {@link COUNTER_FIELDS_ADMIN}. */
export type CounterField = (typeof COUNTER_FIELDS_ADMIN)[number];

/** Where one counter field goes in `/metrics`: a family and the constant labels that distinguish it. */
export interface FamilyMapping {
  /** Family name, `metrics_distributor_` included. */
  name: string;
  /** The `# HELP` text. */
  help: string;
  /** Constant labels added to `component_id` (e.g. `error_type` for errors). */
  labels?: Readonly<Record<string, string>>;
}

const P = 'metrics_distributor_component_';

/**
 * The Vector-instrumentation-spec mapping of each field. Sinks (component ids `sink-*`) count payloads
 * and bytes they *sent*; every other component counts what it *received*: so the field name alone does
 * not say the direction, the component kind does.
 */
export function counterFamily(field: Exclude<CounterField, 'dropped'>, component: string): FamilyMapping {
  const sink = component.startsWith('sink-');
  switch (field) {
    case 'packets':
      return sink
        ? { name: `${P}sent_payloads_total`, help: 'Payloads a sink delivered (requests accepted, writes done).' }
        : { name: `${P}received_packets_total`, help: 'Datagrams, TCP chunks or HTTP bodies a component received.' };
    case 'bytes':
      return sink
        ? { name: `${P}sent_bytes_total`, help: 'Bytes a sink delivered, as sent on the wire (compressed when compressed).' }
        : { name: `${P}received_bytes_total`, help: 'Raw bytes a component received.' };
    case 'received':
      return { name: `${P}received_events_total`, help: 'Items a component received: lines for front-ends, windows or items for sinks.' };
    case 'parsed':
      return { name: `${P}parsed_events_total`, help: 'Items understood and handed on.' };
    case 'sent':
      return { name: `${P}sent_events_total`, help: 'Items a sink sent successfully.' };
    case 'bad':
      return { name: `${P}errors_total`, help: 'Errors by component, type and stage.', labels: { error_type: 'parser_failed', stage: 'processing' } };
    case 'failed':
      return { name: `${P}errors_total`, help: 'Errors by component, type and stage.', labels: { error_type: 'request_failed', stage: 'sending' } };
  }
}

/** The family of drops: one series per component and reason. */
export const DISCARDED_FAMILY = `${P}discarded_events_total`;
