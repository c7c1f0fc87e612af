// Drawing the zone-check input on the map: a picked point, or a polygon or a line clicked corner by
// corner, shown through the "zone-input" GeoJSON source that map.js adds.

const SOURCE = 'zone-input';

function collection(features) {
  return { type: 'FeatureCollection', features };
}

/** Creates the zone-input drawer for `map`. */
export function createDrawer(map) {
  let session = null;

  const setData = (features) => map.getSource(SOURCE)?.setData(collection(features));

  const sketch = (corners, cursor, kind = 'polygon') => {
    const ring = cursor ? [...corners, cursor] : corners;
    session?.onSketch?.(ring);
    const features = corners.map((c) => ({
      type: 'Feature',
      properties: { vertex: true },
      geometry: { type: 'Point', coordinates: c },
    }));
    if (kind === 'line' && ring.length >= 2) {
      features.unshift({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: ring } });
    } else if (ring.length >= 3) {
      features.unshift({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[...ring, ring[0]]] } });
    } else if (ring.length === 2) {
      features.unshift({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: ring } });
    }
    setData(features);
  };

  function stop() {
    if (!session) return;
    map.off('click', session.onClick);
    map.off('dblclick', session.onDblClick);
    map.off('mousemove', session.onMove);
    window.removeEventListener('keydown', session.onKey);
    map.getCanvas().style.cursor = '';
    map.doubleClickZoom.enable();
    session = null;
  }

  return {
    /** Shows GeoJSON geometries (or features) as the current input. */
    show(geometries) {
      setData(
        geometries.map((g) => (g.type === 'Feature' ? g : { type: 'Feature', properties: {}, geometry: g })),
      );
    },
    clear() {
      stop();
      setData([]);
    },
    get active() {
      return session !== null;
    },
    /** Waits for one map click; calls onPoint(Point geometry). */
    pickPoint(onPoint) {
      stop();
      const onClick = (event) => {
        const geometry = { type: 'Point', coordinates: [event.lngLat.lng, event.lngLat.lat] };
        stop();
        setData([{ type: 'Feature', properties: {}, geometry }]);
        onPoint(geometry);
      };
      session = { onClick, onDblClick: () => {}, onMove: () => {}, onKey: () => {} };
      session.onKey = (event) => event.key === 'Escape' && stop();
      map.on('click', onClick);
      window.addEventListener('keydown', session.onKey);
      map.getCanvas().style.cursor = 'crosshair';
    },
    /**
     * Starts a polygon (or, with kind "line", a line): clicks add corners, a double-click or
     * finish() ends it and calls onFinish(Polygon or LineString geometry); Esc or cancel() stops.
     * onChange(cornerCount) follows edits; onSketch(coordinates) every change of the sketch,
     * the cursor's position included (for a live measure).
     */
    drawPolygon({ onFinish, onChange, onSketch, kind = 'polygon' }) {
      stop();
      const corners = [];
      const fewest = kind === 'line' ? 2 : 3;
      const finish = () => {
        if (corners.length < fewest) return false;
        const geometry =
          kind === 'line'
            ? { type: 'LineString', coordinates: [...corners] }
            : { type: 'Polygon', coordinates: [[...corners, corners[0]]] };
        stop();
        setData([{ type: 'Feature', properties: {}, geometry }]);
        onFinish(geometry);
        return true;
      };
      const onClick = (event) => {
        corners.push([event.lngLat.lng, event.lngLat.lat]);
        sketch(corners, null, kind);
        onChange?.(corners.length);
      };
      const onDblClick = (event) => {
        event.preventDefault();
        // The double-click's second click already added a corner at the same place.
        if (corners.length > fewest) corners.pop();
        finish();
      };
      const onMove = (event) => corners.length && sketch(corners, [event.lngLat.lng, event.lngLat.lat], kind);
      const onKey = (event) => {
        if (event.key === 'Escape') {
          stop();
          setData([]);
          onChange?.(0);
        } else if (event.key === 'Enter') {
          finish();
        }
      };
      session = { onClick, onDblClick, onMove, onKey, corners, finish, kind, onSketch };
      map.doubleClickZoom.disable();
      map.on('click', onClick);
      map.on('dblclick', onDblClick);
      map.on('mousemove', onMove);
      window.addEventListener('keydown', onKey);
      map.getCanvas().style.cursor = 'crosshair';
      setData([]);
    },
    /** Closes the polygon being drawn; false when it has fewer than 3 corners. */
    finish() {
      return session?.finish ? session.finish() : false;
    },
    /** Removes the last corner of the polygon being drawn. */
    undo() {
      if (!session?.corners?.length) return 0;
      session.corners.pop();
      sketch(session.corners, null, session.kind);
      return session.corners.length;
    },
    cancel() {
      stop();
      setData([]);
    },
  };
}
