%%% @doc Emitter group management for reckon-db, served by the
%%% `reckon_cnode' C node.
%%%
%%% Same exported functions, specs and results as `reckon_db_emitter_group'
%%% of reckon_db v1.2.3. Every function sends one request straight from the
%%% calling process to the C node's request server
%%% (`gen_server:call({reckon_cnode, CNode}, Request, CallTimeout)'); the C
%%% node's name and the timeout are read from `persistent_term' (published
%%% by {@link reckon_cnode}), so no local process sits on the request path.
%%%
%%% Errors:
%%% <ul>
%%% <li>where the seed raises `badarg' or `system_limit', so does this module
%%%   (`erlang:error(Reason, Args)', same class and reason);</li>
%%% <li>`join/3' and `leave/3' with a non-atom store id raise
%%%   `function_clause', as the seed does;</li>
%%% <li>`error({reckon_cnode_unavailable, CNode})' when the C node is not
%%%   reachable or does not answer within `call_timeout';</li>
%%% <li>`error(reckon_cnode_not_started)' when the `reckon_cnode'
%%%   application is not running;</li>
%%% <li>`error(not_implemented)' from the group operations (`join/3',
%%%   `leave/3', `members/2', `broadcast/3') while the C node answers them
%%%   with `{error, not_implemented}'. `broadcast/3' raises rather than
%%%   returning the error so that its result stays within the seed's
%%%   `ok | {error, no_emitters}'.</li>
%%% </ul>
%%%
%%% From Elixir the module is `:reckon_db_emitter_group'.
%%% @end
-module(reckon_db_emitter_group).

-export([broadcast/3,
         emitter_name/2,
         emitter_name/3,
         group_key/2,
         join/3,
         leave/3,
         members/2,
         persist_emitters/3,
         retrieve_emitters/2,
         topic/2]).

-export_type([store_id/0, subscription_id/0, event/0]).

%% The reckon-db event record (12 fields). Older reckon-gater sends the
%% 11-tuple without `tags'; broadcast/3 forwards the term unchanged.
-record(event, {event_id :: binary(),
                event_type :: binary(),
                stream_id :: binary(),
                version :: non_neg_integer(),
                data :: map() | binary(),
                metadata :: map(),
                tags :: [binary()] | undefined,
                timestamp :: integer(),
                epoch_us :: integer(),
                data_content_type :: binary(),
                metadata_content_type :: binary()}).

-type event() :: #event{}.
-type store_id() :: atom().
-type subscription_id() :: binary().

%% Translate the C node's reply: {ok, X} -> X; the seed's errors are raised
%% in the calling function with its arguments.
-define(RESULT(Reply, Args),
        case Reply of
            {ok, Result__} ->
                Result__;
            {error, Reason__} when Reason__ =:= badarg;
                                   Reason__ =:= system_limit;
                                   Reason__ =:= not_implemented ->
                erlang:error(Reason__, Args);
            Other__ ->
                erlang:error({reckon_cnode_bad_reply, Other__}, Args)
        end).

%% @doc Broadcast an event to a random emitter in the group.
%%
%% If the selected emitter is on the calling node, it is sent
%% `{forward_to_local, Topic, Event}' for optimized local delivery;
%% otherwise `{broadcast, Topic, Event}'. Returns `{error, no_emitters}'
%% when the group is empty.
-spec broadcast(store_id(), subscription_id(), event()) ->
          ok | {error, no_emitters}.
broadcast(StoreId, SubscriptionId, Event) ->
    Args = [StoreId, SubscriptionId, Event],
    case reckon_cnode:request({broadcast, StoreId, SubscriptionId, Event}) of
        ok -> ok;
        {ok, ok} -> ok;
        {error, no_emitters} -> {error, no_emitters};
        Reply -> ?RESULT(Reply, Args)
    end.

%% @doc Generate the base emitter name for a subscription:
%% the characters of `StoreId', `_', each byte of `SubscriptionId' as one
%% latin-1 character, `_emitter'. Raises `badarg' for a store id with a
%% character above 255 and `system_limit' for a name over 255 characters.
-spec emitter_name(store_id(), subscription_id()) -> atom().
emitter_name(StoreId, SubscriptionId) ->
    Reply = reckon_cnode:request({emitter_name, StoreId, SubscriptionId}),
    ?RESULT(Reply, [StoreId, SubscriptionId]).

%% @doc Generate a numbered emitter name for a subscription: as
%% {@link emitter_name/2} with `_emitter_' followed by `N' in decimal.
-spec emitter_name(store_id(), subscription_id(), pos_integer()) -> atom().
emitter_name(StoreId, SubscriptionId, N) ->
    Reply = reckon_cnode:request({emitter_name, StoreId, SubscriptionId, N}),
    ?RESULT(Reply, [StoreId, SubscriptionId, N]).

%% @doc Generate the group key for a subscription's emitters:
%% `{StoreId, SubscriptionId, emitters}'.
-spec group_key(store_id(), subscription_id()) ->
          {atom(), subscription_id(), emitters}.
group_key(StoreId, SubscriptionId) ->
    Reply = reckon_cnode:request({group_key, StoreId, SubscriptionId}),
    ?RESULT(Reply, [StoreId, SubscriptionId]).

%% @doc Join one or more processes to the emitter group (`pg' semantics:
%% a process may join several times and must leave as often).
-spec join(store_id(), subscription_id(), pid() | [pid()]) -> ok.
join(StoreId, SubscriptionId, PidOrPids) when is_atom(StoreId) ->
    Args = [StoreId, SubscriptionId, PidOrPids],
    case reckon_cnode:request({join, StoreId, SubscriptionId, PidOrPids}) of
        ok -> ok;
        {ok, ok} -> ok;
        Reply -> ?RESULT(Reply, Args)
    end.

%% @doc Remove one or more processes from the emitter group.
-spec leave(store_id(), subscription_id(), pid() | [pid()]) -> ok.
leave(StoreId, SubscriptionId, PidOrPids) when is_atom(StoreId) ->
    Args = [StoreId, SubscriptionId, PidOrPids],
    case reckon_cnode:request({leave, StoreId, SubscriptionId, PidOrPids}) of
        ok -> ok;
        {ok, ok} -> ok;
        Reply -> ?RESULT(Reply, Args)
    end.

%% @doc Get all member processes in the emitter group, cluster-wide,
%% duplicates kept, in any order.
-spec members(store_id(), subscription_id()) -> [pid()].
members(StoreId, SubscriptionId) ->
    Reply = reckon_cnode:request({members, StoreId, SubscriptionId}),
    ?RESULT(Reply, [StoreId, SubscriptionId]).

%% @doc Persist emitter names for fast retrieval: stores
%% `[emitter_name(S, Sub) | [emitter_name(S, Sub, N) || N <- 2..PoolSize]]'
%% under `group_key(S, Sub)', replacing what was there, and returns it.
-spec persist_emitters(store_id(), subscription_id(), pos_integer()) -> [atom()].
persist_emitters(StoreId, SubscriptionId, PoolSize) ->
    Reply = reckon_cnode:request({persist_emitters, StoreId, SubscriptionId,
                                  PoolSize}),
    ?RESULT(Reply, [StoreId, SubscriptionId, PoolSize]).

%% @doc Retrieve previously persisted emitter names, or `[]'.
-spec retrieve_emitters(store_id(), subscription_id()) -> [atom()].
retrieve_emitters(StoreId, SubscriptionId) ->
    Reply = reckon_cnode:request({retrieve_emitters, StoreId, SubscriptionId}),
    ?RESULT(Reply, [StoreId, SubscriptionId]).

%% @doc Generate the topic name for a subscription: the characters of
%% `StoreId' as latin-1 bytes, `:', the bytes of `SubscriptionId'.
%%
%% Special case: the binary `<<"$all">>' creates a topic for all events
%% (same shape). Raises `badarg' for a store id with a character above 255.
-spec topic(store_id(), subscription_id()) -> binary().
topic(StoreId, SubscriptionId) ->
    Reply = reckon_cnode:request({topic, StoreId, SubscriptionId}),
    ?RESULT(Reply, [StoreId, SubscriptionId]).
