%%% @doc The stand-in's emitter groups: the documented API of reckon-db's
%%% `reckon_db_emitter_group' (scope `reckon_db_pg', group
%%% `{Store, Sub, emitters}', a uniformly random member per broadcast,
%%% `forward_to_local' for a member of the calling node, `broadcast'
%%% otherwise; names kept in `persistent_term').
-module(reckon_db_emitter_group).

-export([broadcast/3, emitter_name/2, emitter_name/3, group_key/2, join/3, leave/3,
         members/2, persist_emitters/3, retrieve_emitters/2, topic/2]).

-define(SCOPE, reckon_db_pg).

-spec broadcast(atom(), binary(), term()) -> ok | {error, no_emitters}.
broadcast(StoreId, SubscriptionId, Event) when is_atom(StoreId) ->
    Topic = topic(StoreId, SubscriptionId),
    case pg:get_members(?SCOPE, group_key(StoreId, SubscriptionId)) of
        [] ->
            logger:warning("No emitters for [~p]", [Topic]),
            {error, no_emitters};
        Members ->
            Pid = lists:nth(rand:uniform(length(Members)), Members),
            Kind = case node(Pid) =:= node() of
                       true -> forward_to_local;
                       false -> broadcast
                   end,
            Pid ! {Kind, Topic, Event},
            ok
    end.

-spec emitter_name(atom(), binary()) -> atom().
emitter_name(StoreId, SubscriptionId) ->
    list_to_atom(name_base(StoreId, SubscriptionId) ++ "_emitter").

-spec emitter_name(atom(), binary(), pos_integer()) -> atom().
emitter_name(StoreId, SubscriptionId, N) ->
    list_to_atom(name_base(StoreId, SubscriptionId) ++ "_emitter_" ++ integer_to_list(N)).

-spec group_key(atom(), binary()) -> {atom(), binary(), emitters}.
group_key(StoreId, SubscriptionId) ->
    {StoreId, SubscriptionId, emitters}.

-spec join(atom(), binary(), pid() | [pid()]) -> ok.
join(StoreId, SubscriptionId, PidOrPids) when is_atom(StoreId) ->
    pg:join(?SCOPE, group_key(StoreId, SubscriptionId), PidOrPids).

%% A pid that is not joined is no error (pg says not_joined).
-spec leave(atom(), binary(), pid() | [pid()]) -> ok.
leave(StoreId, SubscriptionId, PidOrPids) when is_atom(StoreId) ->
    _ = pg:leave(?SCOPE, group_key(StoreId, SubscriptionId), PidOrPids),
    ok.

-spec members(atom(), binary()) -> [pid()].
members(StoreId, SubscriptionId) ->
    pg:get_members(?SCOPE, group_key(StoreId, SubscriptionId)).

-spec persist_emitters(atom(), binary(), pos_integer()) -> [atom()].
persist_emitters(StoreId, SubscriptionId, PoolSize) when PoolSize >= 1 ->
    Names = [emitter_name(StoreId, SubscriptionId)
             | [emitter_name(StoreId, SubscriptionId, N) || N <- lists:seq(2, PoolSize)]],
    persistent_term:put({?MODULE, group_key(StoreId, SubscriptionId)}, Names),
    Names.

-spec retrieve_emitters(atom(), binary()) -> [atom()].
retrieve_emitters(StoreId, SubscriptionId) ->
    persistent_term:get({?MODULE, group_key(StoreId, SubscriptionId)}, []).

-spec topic(atom(), binary()) -> binary().
topic(StoreId, SubscriptionId) ->
    iolist_to_binary(io_lib:format("~s:~s", [StoreId, SubscriptionId])).

%% The store's characters, `_', each byte of the subscription as one
%% character.
name_base(StoreId, SubscriptionId) ->
    atom_to_list(StoreId) ++ "_" ++ binary_to_list(SubscriptionId).
