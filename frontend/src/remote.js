// Remote layers (copies of partner cities' OGC API collections, group `partners`): the line that
// says where a copy comes from and how old it is, in the layer panel, popups and the zone check.

import { getLang, pick, t } from './i18n.js';

/** A time stamp (ISO 8601) in the interface language, e.g. "2026年12月3日 17:05" / "3 Dec 2026, 17:05". */
export function stampText(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(getLang() === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}

/** "来源：漳州市 · 更新于 …" / "Source: Zhangzhou · updated …" for a layer entry of /api/layers
 * (null for our own layers). `fetchedAt` overrides the layer's (a zone-check row's). */
export function remoteSourceText(layer, fetchedAt = undefined) {
  const remote = layer?.remote;
  if (!remote) return null;
  const partner = pick(remote.partner);
  const when = fetchedAt !== undefined ? fetchedAt : remote.fetched_at;
  return when ? t('remoteSource', { partner, age: stampText(when) }) : t('remoteNever', { partner });
}
