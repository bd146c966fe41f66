// HA Ingestor data-flow card: the ingestor's services as a graph, coloured and labelled by
// their status entities, edges along the ingestion path labelled with the event rate.
//
// Plain ES module, no build step: the integration serves this file and adds it to every
// frontend page. Everything it draws comes from the device registry (the `via_device`
// links the integration maintains) and the entity registry, so it follows whatever
// services the ingestor's revision runs.
//
//   type: custom:ha-ingestor-flow-card
//   entry_id: 01JHAINGESTOR0000000000000   # optional: the config entry to follow
//   device_id: 3f1c...                      # optional: or the "HA Ingestor" device
//   title: HA Ingestor                      # optional: empty hides the header
//
// The same module defines the card's visual editor (`getConfigElement`) and the sidebar
// panel `ha-ingestor-panel` the integration registers (frontend.py). Every word the card
// and the panel show comes from the integration's translations (strings.json, selector
// "card"), loaded through Home Assistant in the user's language; FALLBACK is the English
// text until they have loaded (tests/test_repository.py keeps the two the same).

const CARD_TYPE = "ha-ingestor-flow-card";
const EDITOR_TYPE = "ha-ingestor-flow-card-editor";
const PANEL_TYPE = "ha-ingestor-panel";
const DOMAIN = "ha_ingestor";
// The device whose ancestors form the ingestion path: what the events flow into.
const SINK_MODEL = "influxdb";
// Wide enough for a name on two lines; two fit side by side on a phone.
const NODE_WIDTH = 150;

const FALLBACK = {
  no_entry: "No HA Ingestor entry found. Set one up, or give entry_id or device_id.",
  no_devices: "No HA Ingestor devices found for config entry {entry_id}.",
  source: "Source: {source}",
  no_alerts: "No alerts",
  one_alert: "1 alert",
  alerts: "{count} alerts",
  delivered: "{share} delivered",
  events_per_minute: "Events per minute",
  delivery_completeness: "Delivery completeness",
  editor_entry: "HA Ingestor entry",
  editor_title: "Title (empty hides the header)",
  panel_alerts: "Alerts",
  panel_delivery: "Delivery check",
  panel_trend: "Events per minute, last 24 hours",
  panel_no_entries: "No HA Ingestor entry is set up yet: add one under Settings -> Devices & services.",
};

/** Placeholders such as {count} filled in, as Home Assistant's localize does. */
function formatText(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

// Language -> the localize function of our translations once loaded (undefined while loading).
const localizers = new Map();
const translationsLoaded = new EventTarget();

function localizerFor(hass) {
  const language = hass.language || "en";
  if (!localizers.has(language)) {
    localizers.set(language, undefined);
    if (typeof hass.loadBackendTranslation === "function") {
      hass.loadBackendTranslation("selector", DOMAIN).then(
        (localize) => {
          localizers.set(language, localize);
          translationsLoaded.dispatchEvent(new Event("loaded"));
        },
        () => undefined,
      );
    }
  }
  return localizers.get(language);
}

/** A word of the card in the user's language (English until the translations are in). */
function word(hass, key, values = {}) {
  const localize = hass && localizerFor(hass);
  const text = localize && localize(`component.${DOMAIN}.selector.card.options.${key}`, values);
  return text || formatText(FALLBACK[key], values);
}

const STATUS_BY_STATE = {
  healthy: "ok",
  degraded: "warning",
  unhealthy: "error",
  on: "ok",
  off: "error",
  unknown: "unknown",
  unavailable: "unavailable",
};
// A shape per status, so the colour is never the only signal (Material Design Icons paths:
// check, exclamation, close, help, minus).
const GLYPH = {
  ok: "M21,7L9,19L3.5,13.5L4.91,12.09L9,16.17L19.59,5.59L21,7Z",
  warning: "M11,4H13V14H11V4M11,18H13V20H11V18Z",
  error: "M19,6.41L17.59,5L12,10.59L6.41,5L5,6.41L10.59,12L5,17.59L6.41,19L12,13.41L17.59,19L19,17.59L13.41,12L19,6.41Z",
  unknown: "M10,19H13V22H10V19M12,2C17.35,2.22 19.68,7.62 16.5,11.67C15.67,12.67 14.33,13.33 13.67,14.17C13,15 13,16 13,17H10C10,15.33 10,13.92 10.67,12.92C11.33,11.92 12.67,11.33 13.5,10.67C15.92,8.43 15.32,5.26 12,5A3,3 0 0,0 9,8H6A6,6 0 0,1 12,2Z",
  unavailable: "M19,13H5V11H19V13Z",
};

const STYLE = `
  :host { display: block; }
  ha-card { overflow: hidden; }
  .header {
    display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between;
    gap: 4px 16px; padding: 12px 16px 0;
  }
  .title { font-size: var(--ha-card-header-font-size, 1.25rem); color: var(--ha-card-header-color, var(--primary-text-color)); }
  .source { font-size: 0.875rem; color: var(--secondary-text-color); }
  .message { padding: 16px; color: var(--secondary-text-color); }
  .flow { position: relative; display: flex; flex-direction: column; gap: 44px; padding: 16px 12px; }
  .layer { position: relative; z-index: 1; display: flex; flex-wrap: wrap; justify-content: center; gap: 16px; }
  .group { display: flex; flex-wrap: wrap; justify-content: center; gap: 10px; max-width: 100%; }
  .group.siblings {
    padding: 8px; border-radius: 14px;
    border: 1px dashed var(--divider-color, rgba(127, 127, 127, 0.4));
  }
  svg.edges { position: absolute; inset: 0; width: 100%; height: 100%; z-index: 0; pointer-events: none; overflow: visible; }
  .edge { fill: none; stroke: var(--divider-color, rgba(127, 127, 127, 0.4)); stroke-width: 1.5; stroke-dasharray: 4 4; }
  .edge.ingest { stroke: var(--primary-color); stroke-width: 2.5; stroke-dasharray: 8 6; animation: flow 1.2s linear infinite; }
  .edge.ingest.idle { animation: none; stroke: var(--disabled-text-color, var(--secondary-text-color)); }
  @keyframes flow { to { stroke-dashoffset: -14; } }
  @media (prefers-reduced-motion: reduce) { .edge.ingest { animation: none; } }
  .rate {
    position: absolute; z-index: 2; transform: translate(-50%, -50%); white-space: nowrap;
    font-size: 0.75rem; padding: 1px 6px; border-radius: 8px;
    color: var(--primary-text-color); background: var(--card-background-color, var(--ha-card-background, white));
    border: 1px solid var(--divider-color, rgba(127, 127, 127, 0.4));
  }
  .node {
    --status-color: var(--disabled-text-color, #9e9e9e);
    box-sizing: border-box; width: ${NODE_WIDTH}px; min-height: 56px; margin: 0; padding: 8px 10px;
    display: flex; flex-direction: column; align-items: flex-start; gap: 4px; text-align: start;
    font: inherit; color: var(--primary-text-color); cursor: pointer;
    background: var(--card-background-color, var(--ha-card-background, white));
    border: 1px solid var(--divider-color, rgba(127, 127, 127, 0.4));
    border-left: 6px solid var(--status-color); border-radius: 10px;
  }
  .node:hover { background: var(--secondary-background-color); }
  .node:focus-visible { outline: 2px solid var(--primary-color); outline-offset: 2px; }
  .node[disabled] { cursor: default; }
  .node.ok { --status-color: var(--success-color, #43a047); }
  .node.warning { --status-color: var(--warning-color, #ffa600); }
  .node.error { --status-color: var(--error-color, #db4437); }
  .name { font-weight: 500; font-size: 0.9rem; line-height: 1.2; overflow-wrap: anywhere; }
  .status { display: inline-flex; align-items: center; gap: 6px; font-size: 0.8rem; color: var(--secondary-text-color); }
  .badge { flex: none; width: 16px; height: 16px; border-radius: 50%; background: var(--status-color); }
  .badge path { fill: var(--text-primary-color, white); }
  .node.root .status { color: var(--primary-text-color); }
`;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function hasOurIdentifier(device) {
  return (device.identifiers || []).some((identifier) => identifier[0] === DOMAIN);
}

/** The config entries that have HA Ingestor devices, in a stable order. */
function ingestorEntries(hass) {
  const entries = new Set();
  for (const device of Object.values(hass.devices || {})) {
    if (hasOurIdentifier(device)) {
      for (const entryId of device.config_entries || []) entries.add(entryId);
    }
  }
  return [...entries].sort();
}

function followedEntry(hass, config) {
  if (config.entry_id) return config.entry_id;
  if (config.device_id) {
    const device = (hass.devices || {})[config.device_id];
    return device ? device.primary_config_entry || (device.config_entries || [])[0] : undefined;
  }
  return ingestorEntries(hass)[0];
}

/**
 * The graph of one entry, from the registries only: nodes (devices with their entities),
 * the root (the "HA Ingestor" device every `via_device` chain ends at) and the ingestion path.
 */
function buildGraph(hass, entryId) {
  const devices = Object.values(hass.devices || {}).filter(
    (d) => hasOurIdentifier(d) && (d.config_entries || []).includes(entryId),
  );
  if (!devices.length) return undefined;
  const byId = new Map(devices.map((d) => [d.id, d]));
  const entities = new Map(devices.map((d) => [d.id, []]));
  for (const entity of Object.values(hass.entities || {})) {
    if (entity.platform === DOMAIN && entities.has(entity.device_id)) {
      entities.get(entity.device_id).push(entity);
    }
  }
  const parentOf = (d) => (byId.has(d.via_device_id) && d.via_device_id !== d.id ? d.via_device_id : undefined);
  const tops = devices.filter((d) => parentOf(d) === undefined);
  // The main device: the top the most devices hang from (normally the only top).
  const descendants = (id, seen = new Set()) => {
    if (seen.has(id)) return 0;
    seen.add(id);
    return devices.filter((d) => parentOf(d) === id).reduce((n, d) => n + 1 + descendants(d.id, seen), 0);
  };
  const root = tops.sort((a, b) => descendants(b.id) - descendants(a.id))[0] || devices[0];
  const depth = new Map([[root.id, 0]]);
  const parent = new Map();
  const queue = [root.id];
  while (queue.length) {
    const id = queue.shift();
    for (const d of devices) {
      if (parentOf(d) === id && !depth.has(d.id)) {
        depth.set(d.id, depth.get(id) + 1);
        parent.set(d.id, id);
        queue.push(d.id);
      }
    }
  }
  // Devices cut off from the root (a link not yet written, a cycle) hang from it directly.
  for (const d of devices) {
    if (!depth.has(d.id)) {
      depth.set(d.id, 1);
      parent.set(d.id, root.id);
    }
  }
  const sink = devices.find((d) => d.id !== root.id && String(d.model || "").toLowerCase() === SINK_MODEL);
  const path = new Set();
  for (let id = sink && sink.id; id !== undefined && id !== root.id; id = parent.get(id)) path.add(id);
  return { devices, entities, root, depth, parent, path };
}

function byKey(list, key) {
  return list.find((e) => e.translation_key === key);
}

function statusEntity(hass, list) {
  const status = byKey(list, "service_status");
  if (status) return status.entity_id;
  const connectivity = list.find(
    (e) => e.entity_id.startsWith("binary_sensor.") && hass.states[e.entity_id]?.attributes.device_class === "connectivity",
  );
  return connectivity && connectivity.entity_id;
}

/**
 * Each ingestion edge's own delivered share from the funnel's stages (the `events_lost`
 * attributes, docs/architecture.md#the-delivery-funnel): into the ingestor, what it received
 * of what fired; into InfluxDB, what was stored of what it received and did not filter. A
 * stage that is unknown leaves its edge without a share. Percent, 0-100.
 */
function edgeShares(lostState) {
  const a = (lostState && lostState.attributes) || {};
  const known = (v) => typeof v === "number" && Number.isFinite(v);
  const fired = a.events_fired;
  if (!known(fired) || fired <= 0 || !known(a.lost_before_ingestor)) return {};
  const received = fired - a.lost_before_ingestor;
  const shares = { received: (100 * received) / fired };
  if (known(a.filtered) && known(a.lost_in_ingestor) && known(a.lost_writing)) {
    const meant = received - a.filtered;
    if (meant > 0) shares.stored = (100 * (meant - a.lost_in_ingestor - a.lost_writing)) / meant;
  }
  return shares;
}

function formatShare(hass, share) {
  const language = (hass.locale && hass.locale.language) || hass.language || "en";
  const clamped = Math.min(100, Math.max(0, share));
  return `${new Intl.NumberFormat(language, { maximumFractionDigits: 2 }).format(clamped)} %`;
}

function formatState(hass, stateObj) {
  if (typeof hass.formatEntityState === "function") return hass.formatEntityState(stateObj);
  return stateObj.state;
}

function unavailableLabel(hass, state) {
  const text = hass.localize && hass.localize(`state.default.${state}`);
  return text || (state === "unavailable" ? "Unavailable" : "Unknown");
}

/** Status class and text of a service node. */
function serviceStatus(hass, entityId) {
  const stateObj = entityId && hass.states[entityId];
  if (!stateObj) return { status: "unknown", label: unavailableLabel(hass, "unknown") };
  const status = STATUS_BY_STATE[stateObj.state] || "unknown";
  return { status, label: formatState(hass, stateObj) };
}

/** Status of the root: the alerts the integration evaluates, counted. */
function alertStatus(hass, entityId) {
  const stateObj = entityId && hass.states[entityId];
  if (!stateObj || ["unknown", "unavailable"].includes(stateObj.state)) {
    const state = stateObj ? stateObj.state : "unknown";
    return { status: STATUS_BY_STATE[state], label: unavailableLabel(hass, state) };
  }
  const count = Number(stateObj.state);
  if (!count) return { status: "ok", label: word(hass, "no_alerts") };
  const alerts = stateObj.attributes.alerts || [];
  const status = alerts.some((a) => a.severity === "error") ? "error" : "warning";
  return { status, label: count === 1 ? word(hass, "one_alert") : word(hass, "alerts", { count }) };
}

function deviceName(device) {
  return device.name_by_user || device.name || device.model || device.id;
}

class HaIngestorFlowCard extends HTMLElement {
  static getConfigElement() {
    return document.createElement(EDITOR_TYPE);
  }

  static getStubConfig(hass) {
    const entryId = hass && ingestorEntries(hass)[0];
    return entryId ? { entry_id: entryId } : {};
  }

  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._config = {};
    this._key = undefined;
    this._width = 0;
    this._frame = 0;
  }

  setConfig(config) {
    if (!config || typeof config !== "object") throw new Error("Invalid configuration");
    for (const key of ["entry_id", "device_id", "title"]) {
      if (config[key] !== undefined && config[key] !== null && typeof config[key] !== "string") {
        throw new Error(`${key} must be a string`);
      }
    }
    this._config = config;
    this._key = undefined;
    this._update();
  }

  set hass(hass) {
    this._hass = hass;
    this._update();
  }

  get hass() {
    return this._hass;
  }

  getCardSize() {
    return 5;
  }

  getGridOptions() {
    return { columns: 12, min_columns: 6 };
  }

  connectedCallback() {
    this._retranslate = () => {
      this._key = undefined;
      this._update();
    };
    translationsLoaded.addEventListener("loaded", this._retranslate);
    this._resize = new ResizeObserver((entries) => {
      const width = Math.round(entries[0].contentRect.width);
      if (width !== this._width) {
        this._width = width;
        this._layout();
      }
    });
    this._resize.observe(this);
  }

  disconnectedCallback() {
    translationsLoaded.removeEventListener("loaded", this._retranslate);
    if (this._resize) this._resize.disconnect();
    cancelAnimationFrame(this._frame);
  }

  /** Rebuild the graph when the registries change; redraw only when what it shows changed. */
  _update() {
    const hass = this._hass;
    if (!hass) return;
    if (this._graphFor !== hass.devices || this._entitiesFor !== hass.entities || this._graphConfig !== this._config) {
      this._graphFor = hass.devices;
      this._entitiesFor = hass.entities;
      this._graphConfig = this._config;
      this._entryId = followedEntry(hass, this._config);
      this._graph = this._entryId && buildGraph(hass, this._entryId);
    }
    const view = this._view();
    const key = JSON.stringify(view);
    if (key === this._key) return;
    this._key = key;
    this._render(view);
  }

  /** Everything the card shows, as plain data (its JSON decides whether to redraw). */
  _view() {
    const hass = this._hass;
    const title = this._config.title ?? "HA Ingestor";
    const graph = this._graph;
    if (!graph) {
      const message = this._entryId
        ? word(hass, "no_devices", { entry_id: this._entryId })
        : word(hass, "no_entry");
      return { title, message };
    }
    const rootEntities = graph.entities.get(graph.root.id);
    const rateEntity = byKey(rootEntities, "events_per_minute");
    const rateState = rateEntity && hass.states[rateEntity.entity_id];
    const rate = rateState ? formatState(hass, rateState) : undefined;
    const idle = !rateState || !(Number(rateState.state) > 0);
    // Only with the delivery check on, and only once it has compared a window.
    const deliveryEntity = byKey(rootEntities, "delivery_completeness");
    const deliveryState = deliveryEntity && hass.states[deliveryEntity.entity_id];
    const delivery =
      deliveryState && !["unknown", "unavailable"].includes(deliveryState.state)
        ? formatState(hass, deliveryState)
        : undefined;
    // With the funnel's stages known, each edge of the path says its own share.
    const lostEntity = byKey(rootEntities, "events_lost");
    const lostState = lostEntity && hass.states[lostEntity.entity_id];
    const shares = delivery === undefined ? {} : edgeShares(lostState);
    const pathNodes = graph.devices.filter((d) => graph.path.has(d.id));
    const firstHop = pathNodes.find((d) => graph.parent.get(d.id) === graph.root.id);
    const sinkNode = pathNodes.find((d) => String(d.model || "").toLowerCase() === SINK_MODEL);
    const edgeDelivery = {};
    if (firstHop && shares.received !== undefined) {
      edgeDelivery[firstHop.id] = word(hass, "delivered", { share: formatShare(hass, shares.received) });
    }
    if (sinkNode && sinkNode !== firstHop && shares.stored !== undefined) {
      edgeDelivery[sinkNode.id] = word(hass, "delivered", { share: formatShare(hass, shares.stored) });
    }
    const sourceEntity = byKey(rootEntities, "data_source");
    const sourceState = sourceEntity && hass.states[sourceEntity.entity_id];
    const alertsEntity = byKey(rootEntities, "active_alerts");
    const nodes = graph.devices.map((device) => {
      const isRoot = device.id === graph.root.id;
      const entityId = isRoot
        ? (alertsEntity || rateEntity || {}).entity_id
        : statusEntity(hass, graph.entities.get(device.id));
      const { status, label } = isRoot ? alertStatus(hass, entityId) : serviceStatus(hass, entityId);
      return {
        id: device.id,
        name: isRoot ? "Home Assistant" : deviceName(device),
        depth: graph.depth.get(device.id),
        parent: graph.parent.get(device.id),
        ingest: graph.path.has(device.id),
        root: isRoot,
        entityId,
        status,
        label,
      };
    });
    const parents = new Set(nodes.map((n) => n.parent));
    // Devices with children last: their edges leave from a group's bottom row, crossing none.
    nodes.sort(
      (a, b) =>
        a.depth - b.depth ||
        b.ingest - a.ingest ||
        parents.has(a.id) - parents.has(b.id) ||
        a.name.localeCompare(b.name),
    );
    return {
      title,
      source: sourceState ? word(hass, "source", { source: formatState(hass, sourceState) }) : undefined,
      words: {
        delivered: delivery === undefined ? undefined : word(hass, "delivered", { share: delivery }),
        rate: word(hass, "events_per_minute"),
        delivery: word(hass, "delivery_completeness"),
      },
      rate: graph.path.size ? rate : undefined,
      rootRate: graph.path.size ? undefined : rate,
      delivery: graph.path.size ? delivery : undefined,
      rootDelivery: graph.path.size ? undefined : delivery,
      edgeDelivery: graph.path.size ? edgeDelivery : {},
      idle,
      nodes,
    };
  }

  _render(view) {
    const header = view.title
      ? `<div class="header"><span class="title">${escapeHtml(view.title)}</span>${
          view.source ? `<span class="source">${escapeHtml(view.source)}</span>` : ""
        }</div>`
      : "";
    let body;
    if (view.message) {
      body = `<div class="message">${escapeHtml(view.message)}</div>`;
    } else {
      // Layers top-down; within a layer, the children of one device form a group, so one
      // edge reaches them all and the graph stays readable however many services there are.
      const layers = [];
      for (const node of view.nodes) {
        const layer = (layers[node.depth] ||= new Map());
        const group = layer.get(node.parent) || [];
        layer.set(node.parent, [...group, node]);
      }
      body = `<div class="flow"><svg class="edges" aria-hidden="true"></svg>${layers
        .filter(Boolean)
        .map(
          (layer) =>
            `<div class="layer">${[...layer]
              .map(
                ([parent, group]) =>
                  `<div class="group${group.length > 1 ? " siblings" : ""}" data-parent="${escapeHtml(parent || "")}">${group
                    .map((n) => this._node(n, view))
                    .join("")}</div>`,
              )
              .join("")}</div>`,
        )
        .join("")}</div>`;
    }
    this.shadowRoot.innerHTML = `<style>${STYLE}</style><ha-card>${header}${body}</ha-card>`;
    this._nodes = view.nodes || [];
    this._rate = view.rate;
    this._delivery = view.delivery;
    this._edgeDelivery = view.edgeDelivery || {};
    this._words = view.words || {};
    this._rootId = (view.nodes || []).find((n) => n.root)?.id;
    this._idle = view.idle;
    for (const button of this.shadowRoot.querySelectorAll(".node[data-entity-id]")) {
      button.addEventListener("click", () => this._moreInfo(button.dataset.entityId));
    }
    this._layout();
  }

  _node(node, view) {
    const extra = node.root
      ? [
          view.rootRate && `<span class="status">${escapeHtml(view.rootRate)}</span>`,
          view.rootDelivery &&
            `<span class="status delivery" title="${escapeHtml(view.words.delivery)}">${escapeHtml(view.words.delivered)}</span>`,
        ]
          .filter(Boolean)
          .join("")
      : "";
    const entity = node.entityId ? ` data-entity-id="${escapeHtml(node.entityId)}"` : " disabled";
    return `<button type="button" class="node ${node.status}${node.root ? " root" : ""}"
      data-device-id="${escapeHtml(node.id)}" data-status="${node.status}"${entity}
      aria-label="${escapeHtml(`${node.name}: ${node.label}`)}">
      <span class="name">${escapeHtml(node.name)}</span>
      <span class="status"><svg class="badge" viewBox="-4 -4 32 32" aria-hidden="true"><path d="${GLYPH[node.status]}"></path></svg><span class="label">${escapeHtml(node.label)}</span></span>
      ${extra}
    </button>`;
  }

  _moreInfo(entityId) {
    this.dispatchEvent(new CustomEvent("hass-more-info", { detail: { entityId }, bubbles: true, composed: true }));
  }

  /** Edges are drawn once the browser has laid the nodes out, and again at every resize. */
  _layout() {
    const flow = this.shadowRoot.querySelector(".flow");
    if (!flow) return;
    cancelAnimationFrame(this._frame);
    this._frame = requestAnimationFrame(() => this._drawEdges(flow));
  }

  /**
   * One edge from each device to the group of its children; the rate on the ingestion path,
   * and each path edge's own delivered share where the funnel knows it (else the delivery
   * completeness on its first edge, where Home Assistant's events leave).
   */
  _drawEdges(flow) {
    for (const old of flow.querySelectorAll(".rate")) old.remove();
    const svg = flow.querySelector("svg.edges");
    const origin = flow.getBoundingClientRect();
    const box = (el) => {
      const r = el.getBoundingClientRect();
      return { x: (r.left + r.right) / 2 - origin.left, top: r.top - origin.top, bottom: r.bottom - origin.top };
    };
    const nodes = new Map([...flow.querySelectorAll(".node")].map((el) => [el.dataset.deviceId, el]));
    const ingest = new Set(this._nodes.filter((n) => n.ingest).map((n) => n.id));
    const paths = [];
    for (const group of flow.querySelectorAll(".group[data-parent]")) {
      const parent = nodes.get(group.dataset.parent);
      if (!parent || !group.firstElementChild) continue;
      const from = box(parent);
      // The ingestion path is drawn to its node; other children through their group's frame.
      const children = [...group.children];
      const next = children.find((el) => ingest.has(el.dataset.deviceId));
      const onPath = next !== undefined;
      const target = next || (children.length > 1 ? group : children[0]);
      const to = box(target);
      const [x1, y1, x2, y2] = [from.x, from.bottom, to.x, to.top];
      const dy = (y2 - y1) / 2;
      const cls = onPath ? `edge ingest${this._idle ? " idle" : ""}` : "edge";
      paths.push(`<path class="${cls}" d="M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2}"></path>`);
      // An edge's own share when the funnel knows it, else the completeness on the first.
      const own = onPath ? this._edgeDelivery[next.dataset.deviceId] : undefined;
      const first = onPath && group.dataset.parent === this._rootId;
      const delivery = own !== undefined ? own : first && this._delivery !== undefined ? this._words.delivered : undefined;
      if (onPath && (this._rate !== undefined || delivery !== undefined)) {
        const label = document.createElement("span");
        label.className = "rate";
        label.dataset.to = next.dataset.deviceId;
        if (this._rate !== undefined) {
          const rate = document.createElement("span");
          rate.title = this._words.rate;
          rate.textContent = this._rate;
          label.append(rate);
        }
        if (delivery !== undefined) {
          const part = document.createElement("span");
          part.className = "delivery";
          part.title = this._words.delivery;
          part.textContent = delivery;
          label.append(...(label.childNodes.length ? [" · "] : []), part);
        }
        label.style.left = `${(x1 + x2) / 2}px`;
        label.style.top = `${(y1 + y2) / 2}px`;
        flow.appendChild(label);
      }
    }
    svg.innerHTML = paths.join("");
  }
}

const EDITOR_SCHEMA = [
  { name: "entry_id", selector: { config_entry: { integration: DOMAIN } } },
  { name: "title", selector: { text: {} } },
];

/** The card's visual editor: which entry the card follows, and its title. */
class HaIngestorFlowCardEditor extends HTMLElement {
  setConfig(config) {
    this._config = { ...config };
    this._render();
  }

  set hass(hass) {
    this._hass = hass;
    this._render();
  }

  _render() {
    if (!this._hass || !this._config) return;
    if (!this._form) {
      this._form = document.createElement("ha-form");
      this._form.computeLabel = (schema) =>
        word(this._hass, schema.name === "entry_id" ? "editor_entry" : "editor_title");
      this._form.addEventListener("value-changed", (event) => {
        event.stopPropagation();
        const config = { ...this._config, ...event.detail.value };
        // A cleared entry means "the first one"; a card never stores a null.
        for (const key of Object.keys(config)) if (config[key] === undefined || config[key] === null) delete config[key];
        this._config = config;
        this.dispatchEvent(new CustomEvent("config-changed", { detail: { config }, bubbles: true, composed: true }));
      });
      this.append(this._form);
    }
    this._form.hass = this._hass;
    this._form.data = this._config;
    this._form.schema = EDITOR_SCHEMA;
  }
}

const PANEL_STYLE = `
  :host { display: block; min-height: 100vh; background: var(--primary-background-color); color: var(--primary-text-color); }
  .toolbar {
    display: flex; align-items: center; gap: 8px; height: var(--header-height, 56px); padding: 0 12px;
    background: var(--app-header-background-color, var(--primary-color));
    color: var(--app-header-text-color, var(--text-primary-color, white));
    font-size: 20px; border-bottom: var(--app-header-border-bottom, none);
  }
  .content { padding: 16px; display: flex; flex-direction: column; gap: 24px; }
  .entry { display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(min(100%, 360px), 1fr)); align-items: start; }
  .entry > .flow { grid-column: 1 / -1; }
  .message { padding: 16px; color: var(--secondary-text-color); }
  @media (max-width: 600px) { .content { padding: 8px; gap: 16px; } }
`;

/** The entities of one entry's main device by translation key, for the panel's cards. */
function mainEntities(hass, entryId) {
  const graph = buildGraph(hass, entryId);
  if (!graph) return undefined;
  const entities = graph.entities.get(graph.root.id) || [];
  const ids = (test) => entities.filter(test).map((e) => e.entity_id).sort();
  return {
    name: deviceName(graph.root),
    alerts: ids((e) => e.entity_id.startsWith("binary_sensor.") && String(e.translation_key).startsWith("alert_")),
    delivery: ["delivery_completeness", "events_lost", "delivery_latency"]
      .map((key) => byKey(entities, key))
      .filter(Boolean)
      .map((e) => e.entity_id),
    rate: byKey(entities, "events_per_minute")?.entity_id,
  };
}

/**
 * Home Assistant's card helpers (`createCardElement`), for its own entities and history cards.
 * They come with the dashboards' code, which a panel opened first has not loaded yet: the
 * frontend's panel resolver loads it (bounded: without it the panel shows the flow card only).
 */
async function cardHelpers() {
  if (!window.loadCardHelpers) {
    const load = (async () => {
      await customElements.whenDefined("partial-panel-resolver");
      const resolver = document.createElement("partial-panel-resolver");
      const routes = resolver._getRoutes && resolver._getRoutes([{ component_name: "lovelace", url_path: "a" }]);
      await routes?.routes?.a?.load?.();
    })();
    await Promise.race([load.catch(() => undefined), new Promise((done) => setTimeout(done, 10_000))]);
  }
  return window.loadCardHelpers ? window.loadCardHelpers() : undefined;
}

/**
 * The sidebar panel: for every entry the data-flow card, its alerts, the delivery figures
 * (with the delivery check on) and the event-rate trend, from Home Assistant's own cards.
 */
class HaIngestorPanel extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._cards = [];
    this._key = undefined;
  }

  set hass(hass) {
    this._hass = hass;
    this._update();
  }

  get hass() {
    return this._hass;
  }

  set narrow(narrow) {
    this._narrow = narrow;
    if (this._menu) this._menu.narrow = narrow;
  }

  set panel(panel) {
    this._panel = panel;
  }

  connectedCallback() {
    this._retranslate = () => {
      this._key = undefined;
      this._update();
    };
    translationsLoaded.addEventListener("loaded", this._retranslate);
  }

  disconnectedCallback() {
    translationsLoaded.removeEventListener("loaded", this._retranslate);
  }

  async _update() {
    const hass = this._hass;
    if (!hass) return;
    // `hass` changes with every state; the entries only with the registries (as in the card).
    if (this._entriesFor !== hass.devices || this._entitiesOf !== hass.entities) {
      this._entriesFor = hass.devices;
      this._entitiesOf = hass.entities;
      this._entries = ingestorEntries(hass).map((entryId) => ({ entryId, ...mainEntities(hass, entryId) }));
    }
    const entries = this._entries;
    const key = JSON.stringify([hass.language, entries]);
    if (key !== this._key) {
      this._key = key;
      await this._build(entries);
    }
    if (this._menu) this._menu.hass = hass;
    for (const card of this._cards) card.hass = hass;
  }

  async _build(entries) {
    const hass = this._hass;
    const key = this._key;
    const helpers = await cardHelpers();
    if (key !== this._key) return; // a newer build started while the helpers loaded
    const root = this.shadowRoot;
    root.innerHTML = `<style>${PANEL_STYLE}</style><div class="toolbar"><ha-menu-button></ha-menu-button><span class="title"></span></div><div class="content"></div>`;
    root.querySelector(".title").textContent = "HA Ingestor";
    this._menu = root.querySelector("ha-menu-button");
    this._menu.hass = hass;
    this._menu.narrow = this._narrow;
    const content = root.querySelector(".content");
    this._cards = [];
    if (!entries.length) {
      const message = document.createElement("div");
      message.className = "message";
      message.textContent = word(hass, "panel_no_entries");
      content.append(message);
      return;
    }
    const builtIn = (config) => {
      if (!helpers) return undefined;
      return helpers.createCardElement(config);
    };
    for (const entry of entries) {
      const section = document.createElement("section");
      section.className = "entry";
      section.dataset.entryId = entry.entryId;
      const flow = document.createElement(CARD_TYPE);
      flow.className = "flow";
      flow.setConfig({ entry_id: entry.entryId, title: entry.name || "HA Ingestor" });
      const cards = [
        flow,
        entry.alerts?.length && builtIn({ type: "entities", title: word(hass, "panel_alerts"), entities: entry.alerts, state_color: true }),
        entry.delivery?.length && builtIn({ type: "entities", title: word(hass, "panel_delivery"), entities: entry.delivery }),
        entry.rate && builtIn({ type: "history-graph", title: word(hass, "panel_trend"), hours_to_show: 24, entities: [entry.rate] }),
      ].filter(Boolean);
      for (const card of cards) {
        card.hass = hass;
        section.append(card);
        this._cards.push(card);
      }
      content.append(section);
    }
  }
}

if (!customElements.get(EDITOR_TYPE)) customElements.define(EDITOR_TYPE, HaIngestorFlowCardEditor);
if (!customElements.get(PANEL_TYPE)) customElements.define(PANEL_TYPE, HaIngestorPanel);
if (!customElements.get(CARD_TYPE)) {
  customElements.define(CARD_TYPE, HaIngestorFlowCard);
  window.customCards = window.customCards || [];
  window.customCards.push({
    type: CARD_TYPE,
    name: "HA Ingestor data flow",
    description: "The HA Ingestor's services as a live graph: status per service, event rate per edge.",
    preview: true,
    documentationURL: "https://github.com/ha-ingestor/ha-ingestor-hass#data-flow-card",
  });
}
