%%% @doc Emitter group management for reckon-db, served by the
%%% `reckon_cnode' C node.
%%%
%%% Same exported functions, specs and results as reckon-db's own
%%% `reckon_db_emitter_group' (v1.2.3 and later; `leave/3' tolerates a pid
%%% that is not joined). The name is this package's own, so a release holds
%%% reckon-db and reckon_cnode side by side.
%%%
%%% Requests go straight from the calling process to the C node's request
%%% server (`gen_server:call({reckon_cnode, CNode},
%%% Request, CallTimeout)'); the C node's name, the timeout and the local
%%% `pg' scope are read from `persistent_term' (published by the shim's
%%% connection watcher, {@link reckon_cnode_conn}), so no local process
%%% sits on the request path.
%%%
%%% Group membership (`join/3', `leave/3') follows OTP `pg' in scope
%%% `reckon_db_pg' (application env `scope'), group `group_key(S, Sub)':
%%% pids of the calling node join and leave through the local `pg' scope
%%% (started by the application if it is not running), pids of the C node
%%% through the C node, which is a peer of the `pg' scopes of every node it
%%% is connected to. `members/2' is answered by the C node and lists the
%%% members of every node it sees, also when the caller is connected to
%%% the C node only.
%%%
%%% Errors:
%%% <ul>
%%% <li>where the seed raises `badarg' or `system_limit', so does this module
%%%   (`erlang:error(Reason, Args)', same class and reason);</li>
%%% <li>`join/3' and `leave/3' with a non-atom store id raise
%%%   `function_clause', as the seed does, and so does a `PidOrPids' that is
%%%   neither a pid nor a list (the seed's `pg' call does);</li>
%%% <li>`join/3' and `leave/3' raise `{nolocal, Bad}' for the first element
%%%   that is not a pid of the calling node or of the C node, as `pg' does,
%%%   before anything is joined or left;</li>
%%% <li>`error({reckon_cnode_unavailable, CNode})' when the C node is not
%%%   reachable or does not answer within `call_timeout';</li>
%%% <li>`error(reckon_cnode_not_started)' when the `reckon_cnode'
%%%   application is not running;</li>
%%% <li>`broadcast/3' never calls the C node (see below): its errors are
%%%   the seed's, `function_clause' for a non-atom store id and `badarg'
%%%   for a topic that cannot be built.</li>
%%% </ul>
%%%
%%% <h3>Broadcast: design and consistency</h3>
%%%
%%% `broadcast/3' runs the seed's algorithm on the caller's node, with no
%%% call to the C node: the members of `{S, Sub, emitters}' are read from
%%% the local `pg' scope (`pg:get_members/2', one ETS read), `[]' gives
%%% `{error, no_emitters}', otherwise one member is picked uniformly at
%%% random (`rand:uniform/1') and sent `{forward_to_local, Topic, Event}'
%%% if it lives on the calling node, else `{broadcast, Topic, Event}', and
%%% `ok' is returned. A synchronous request per event would cap a caller at
%%% one network round trip per event; this way a broadcast costs what the
%%% seed's costs, less: the topic is built with `atom_to_binary(S, latin1)'
%%% and one binary construction instead of `io_lib:format/2'.
%%%
%%% C-hosted emitters are members of that local view because the C node is
%%% a peer of the local `pg' scope (the `reckon_cnode' shim introduces the
%%% two scopes to each other when it connects). The trade-off is the one the
%%% seed already has, with the C node as one more `pg' peer:
%%% <ul>
%%% <li>the caller's own `pg' view decides `no_emitters': an emitter that
%%%   joined on another node (or on the C node) a moment ago is not picked
%%%   until its `join' has reached this node's scope;</li>
%%% <li>a member that has just left (or died) may still be picked; the
%%%   message is then dropped, exactly as with the seed;</li>
%%% <li>C emitters become visible to the caller once the C node has synced
%%%   with the caller's scope (at connect, then one `join' message per
%%%   change).</li>
%%% </ul>
%%% A caller without a local scope (e.g. a node connected to the C node
%%% only) can use {@link reckon_cnode:broadcast_via_cnode/3}, which asks
%%% the C node to pick from its view (one call per event).
%%%
%%% Arguments outside the seed's types behave as the seed's code does: a
%%% non-atom store id raises `function_clause' (the seed's guard); a
%%% non-binary subscription id gets the seed's own topic,
%%% `iolist_to_binary(io_lib:format("~s:~s", [S, Sub]))' (so a string is
%%% accepted, and anything `~s' rejects raises `badarg'), and the group
%%% `{S, Sub, emitters}' as given. The topic is built before the members
%%% are read, so `badarg' comes before `no_emitters', as in the seed; and
%%% like the seed, `no_emitters' is logged as a warning.
%%%
%%% From Elixir the module is `:reckon_cnode_emitter_group'.
%%% @end
-module(reckon_cnode_emitter_group).

-include_lib("kernel/include/logger.hrl").

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
%%
%% Runs on the calling node from the local `pg' view, without a call to
%% the C node (see "Broadcast: design and consistency" above).
-spec broadcast(store_id(), subscription_id(), event()) ->
          ok | {error, no_emitters}.
broadcast(StoreId, SubscriptionId, Event) when is_atom(StoreId) ->
    Topic = broadcast_topic(StoreId, SubscriptionId, Event),
    case pg:get_members(reckon_cnode:scope(), {StoreId, SubscriptionId, emitters}) of
        [] ->
            ?LOG_WARNING("No emitters for [~p]~n", [Topic]),
            {error, no_emitters};
        [Pid] ->
            send_event(Pid, Topic, Event);
        Members ->
            send_event(lists:nth(rand:uniform(length(Members)), Members),
                       Topic, Event)
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
%%
%% Every pid must belong to the calling node (joined through the local
%% `pg' scope) or to the C node (joined through the C node); any other
%% element raises `{nolocal, Element}' and nothing is joined.
-spec join(store_id(), subscription_id(), pid() | [pid()]) -> ok.
join(StoreId, SubscriptionId, PidOrPids)
  when is_atom(StoreId), (is_pid(PidOrPids) orelse is_list(PidOrPids)) ->
    group_op(join, StoreId, SubscriptionId, PidOrPids).

%% @doc Remove one or more processes from the emitter group (`pg'
%% semantics: one leave undoes one join). Leaving a group the process is
%% not in is not an error. Same pid rules as {@link join/3}.
-spec leave(store_id(), subscription_id(), pid() | [pid()]) -> ok.
leave(StoreId, SubscriptionId, PidOrPids)
  when is_atom(StoreId), (is_pid(PidOrPids) orelse is_list(PidOrPids)) ->
    group_op(leave, StoreId, SubscriptionId, PidOrPids).

%% @doc Get all member processes in the emitter group, cluster-wide,
%% duplicates kept, in any order. Answered by the C node: its own members
%% plus those of every node whose `pg' scope it is a peer of.
-spec members(store_id(), subscription_id()) -> [pid()].
members(StoreId, SubscriptionId) ->
    case reckon_cnode:request({members, StoreId, SubscriptionId}) of
        {ok, Pids} when is_list(Pids) -> Pids;
        Reply -> ?RESULT(Reply, [StoreId, SubscriptionId])
    end.

%% @doc Persist emitter names for fast retrieval: stores
%% `[emitter_name(S, Sub) | [emitter_name(S, Sub, N) || N <- 2..PoolSize]]'
%% under `group_key(S, Sub)', replacing what was there, and returns it.
-spec persist_emitters(store_id(), subscription_id(), pos_integer()) -> [atom()].
persist_emitters(StoreId, SubscriptionId, PoolSize) ->
    Reply = reckon_cnode:request({persist_emitters, StoreId, SubscriptionId,
                                  PoolSize}),
    Names = ?RESULT(Reply, [StoreId, SubscriptionId, PoolSize]),
    %% the change reached this node's copy before the answer: once the shim
    %% has applied it, retrieve_emitters/2 here reads the new names
    ok = reckon_cnode:names_applied(),
    Names.

%% @doc Retrieve previously persisted emitter names, or `[]'. Read from this
%% node's copy of the C node's table (kept current by the C node) when it
%% has them; otherwise (nothing persisted, or not connected) the C node is
%% asked.
-spec retrieve_emitters(store_id(), subscription_id()) -> [atom()].
retrieve_emitters(StoreId, SubscriptionId) ->
    case reckon_cnode:cached_emitters(StoreId, SubscriptionId) of
        {ok, Names} ->
            Names;
        error ->
            Reply = reckon_cnode:request({retrieve_emitters, StoreId, SubscriptionId}),
            ?RESULT(Reply, [StoreId, SubscriptionId])
    end.

%% @doc Generate the topic name for a subscription: the characters of
%% `StoreId' as latin-1 bytes, `:', the bytes of `SubscriptionId'.
%%
%% Special case: the binary `<<"$all">>' creates a topic for all events
%% (same shape). Raises `badarg' for a store id with a character above 255.
-spec topic(store_id(), subscription_id()) -> binary().
topic(StoreId, SubscriptionId) ->
    Reply = reckon_cnode:request({topic, StoreId, SubscriptionId}),
    ?RESULT(Reply, [StoreId, SubscriptionId]).

%%%===================================================================
%%% Internal functions
%%%===================================================================

%% topic(S, Sub) on the caller's node, bit-exact with the C node's and the
%% seed's: atom_to_binary/2 with latin1 raises badarg exactly when S has a
%% character above 255. A non-binary Sub gets the seed's own formula.
-spec broadcast_topic(atom(), term(), term()) -> binary().
broadcast_topic(StoreId, SubscriptionId, Event) when is_binary(SubscriptionId) ->
    try atom_to_binary(StoreId, latin1) of
        S -> <<S/binary, $:, SubscriptionId/binary>>
    catch
        error:badarg -> erlang:error(badarg, [StoreId, SubscriptionId, Event])
    end;
broadcast_topic(StoreId, SubscriptionId, Event) ->
    try
        iolist_to_binary(io_lib:format("~s:~s", [StoreId, SubscriptionId]))
    catch
        error:badarg -> erlang:error(badarg, [StoreId, SubscriptionId, Event])
    end.

send_event(Pid, Topic, Event) when node(Pid) =:= node() ->
    Pid ! {forward_to_local, Topic, Event},
    ok;
send_event(Pid, Topic, Event) ->
    Pid ! {broadcast, Topic, Event},
    ok.

%% join/leave: validate every pid first (as pg's ensure_local does), then
%% the C node's pids through the C node, then the local ones through pg.
%% The C node goes first because it is the call that may fail
%% (unavailable); pg on this node does not.
group_op(Op, StoreId, SubscriptionId, PidOrPids) ->
    Scope = reckon_cnode:scope(),
    CNode = reckon_cnode:node(),
    {Local, Remote} = split_pids(PidOrPids, CNode),
    Args = [StoreId, SubscriptionId, PidOrPids],
    case Remote of
        [] ->
            ok;
        _ ->
            case reckon_cnode:request({Op, StoreId, SubscriptionId, Remote}) of
                {ok, ok} -> ok;
                ok -> ok;
                {error, {nolocal, Bad}} -> erlang:error({nolocal, Bad}, Args);
                Reply -> ?RESULT(Reply, Args)
            end
    end,
    %% an empty list goes to pg as the seed's call would
    case Local =/= [] orelse Remote =:= [] of
        true -> local_op(Op, Scope, {StoreId, SubscriptionId, emitters}, Local);
        false -> ok
    end.

local_op(join, Scope, Group, Pids) ->
    ok = pg:join(Scope, Group, Pids);
local_op(leave, Scope, Group, Pids) ->
    %% pg answers not_joined when none of Pids was a member; the seed's
    %% spec (and this function's) is ok
    _ = pg:leave(Scope, Group, Pids),
    ok.

%% {LocalPidOrPids, CNodePids}: a single local pid stays a single pid (so
%% pg sees exactly what the seed would pass it); list order is kept.
-spec split_pids(pid() | [pid()], node()) -> {pid() | [pid()], [pid()]}.
split_pids(Pid, CNode) when is_pid(Pid) ->
    case owner(Pid, CNode) of
        local -> {Pid, []};
        cnode -> {[], [Pid]}
    end;
split_pids(Pids, CNode) ->
    split_list(Pids, CNode, [], []).

split_list([], _CNode, Local, Remote) ->
    {lists:reverse(Local), lists:reverse(Remote)};
split_list([Pid | Rest], CNode, Local, Remote) ->
    case owner(Pid, CNode) of
        local -> split_list(Rest, CNode, [Pid | Local], Remote);
        cnode -> split_list(Rest, CNode, Local, [Pid | Remote])
    end.

owner(Pid, _CNode) when is_pid(Pid), node(Pid) =:= node() -> local;
owner(Pid, CNode) when is_pid(Pid), node(Pid) =:= CNode -> cnode;
owner(Bad, _CNode) -> erlang:error({nolocal, Bad}).
