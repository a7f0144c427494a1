/**
 * A whole search with request controls (sort, VLV, proxied authorization,
 * …) next to the paged-results control: every page carries them, and the
 * response controls land in their instances. Limits end the search as a
 * truncation, as `searchWithInfo` reports it.
 *
 * @internal
 */
import { MessageResponseStatus, PagedResultsControl, SearchRequest, StatusCodeParser } from "ldapts"
import type { Client, Control, SearchEntry, SearchResponse } from "ldapts"
import { FilterParser } from "ldapts"
import type { SearchRequestOptions, Truncation } from "./ldapWire.ts"
import { senderOf } from "./sender.ts"

const truncationOf = (status: number | undefined): Truncation | undefined =>
  status === MessageResponseStatus.SizeLimitExceeded ? "sizeLimit" : status === 3 ? "timeLimit" : status === 11 ? "adminLimit" : undefined

export const search = async (
  client: Client,
  base: string,
  options: SearchRequestOptions,
  controls: ReadonlyArray<Control>
): Promise<{ readonly entries: ReadonlyArray<SearchEntry>; readonly references: ReadonlyArray<string>; readonly truncated: Truncation | undefined }> => {
  const sender = senderOf(client)
  await sender._ensureConnected()
  const paging = options.pageSize > 0 ? new PagedResultsControl({ value: { size: options.pageSize } }) : undefined
  const request = new SearchRequest({
    messageId: -1,
    baseDN: base,
    scope: options.scope,
    filter: FilterParser.parseString(options.filter),
    attributes: options.attributes === undefined ? [] : [...options.attributes],
    returnAttributeValues: true,
    sizeLimit: options.sizeLimit ?? 0,
    timeLimit: options.timeLimit ?? 0,
    controls: [...controls, ...(paging === undefined ? [] : [paging])]
  })
  const entries: Array<SearchEntry> = []
  const references: Array<string> = []
  for (;;) {
    request.messageId = sender._nextMessageId()
    const response = await sender._send<SearchResponse>(request)
    const truncated = truncationOf(response?.status)
    if (response === undefined || (response.status !== MessageResponseStatus.Success && truncated === undefined)) {
      throw StatusCodeParser.parse(response)
    }
    entries.push(...response.searchEntries)
    references.push(...response.searchReferences.flatMap((r) => r.uris))
    let cookie: Buffer | undefined
    for (const control of response.controls ?? []) {
      if (control instanceof PagedResultsControl) cookie = control.value?.cookie
    }
    if (truncated !== undefined || paging === undefined || cookie === undefined || cookie.length === 0) {
      return { entries, references, truncated }
    }
    paging.value = { size: options.pageSize, cookie }
  }
}
