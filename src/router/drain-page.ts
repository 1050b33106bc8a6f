// How big the next backlog page of a drain is. A drain starts with small pages (the first message
// goes out fast, and a crowd of small inboxes costs little) and doubles the page on each further
// page up to a cap, so a long backlog pays one owner → writer → owner round trip per several
// thousand rows instead of per few hundred (issue 14). Under memory pressure pages stay small.

import type { OwnerLimits } from "../limits.ts";

/** Under memory pressure a page gets this fraction of the base byte budget, and never grows. */
export const TIGHT_PAGE_DIVISOR = 4;

export interface PageBudget {
  limit: number; // rows
  maxBytes: number;
}

/** The page after `pagesSoFar` pages of this drain; limits without caps never grow. */
export function pageBudget(limits: OwnerLimits, pagesSoFar: number, tight: boolean): PageBudget {
  if (tight) return { limit: limits.pageSize, maxBytes: limits.pageBytes / TIGHT_PAGE_DIVISOR };
  // 2^20 already exceeds any cap; the bound keeps the shift in range for very long drains.
  const scale = 2 ** Math.min(pagesSoFar, 20);
  return {
    limit: Math.max(limits.pageSize, Math.min(limits.pageSize * scale, limits.pageMaxRows ?? 0)),
    maxBytes: Math.max(limits.pageBytes, Math.min(limits.pageBytes * scale, limits.pageMaxBytes ?? 0)),
  };
}
